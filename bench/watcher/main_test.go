package main

import "testing"

// TestSmall runs the benchmark at a tiny size so it keeps working.
func TestSmall(t *testing.T) {
	if err := run(options{plans: 60, audits: 3, requests: 3, runs: 1, sizes: "6x40", strategy: "vm_workload_consolidation"}); err != nil {
		t.Fatal(err)
	}
}
