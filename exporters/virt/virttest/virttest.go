// Package virttest generates host descriptions for libvirt's in-process
// test driver (test:///path/host.xml), so collectors and benchmarks run
// against real libvirt code with any number of domains and no daemon.
package virttest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Host describes a simulated hypervisor.
type Host struct {
	CPUs      int    // logical CPUs (sockets*cores*threads must match)
	MemoryKiB uint64 // host memory
	Domains   int    // number of running domains
}

// UUID returns the UUID of domain i, stable across runs.
func UUID(i int) string {
	return fmt.Sprintf("6f1c2a3b-4d5e-4f60-8a7b-%012x", i+1)
}

// Name returns the name of domain i, in Nova's pattern.
func Name(i int) string { return fmt.Sprintf("instance-%08x", i+1) }

// XML renders h as a test-driver node document. Every domain has one disk
// with an iotune limit, one NIC and Nova metadata; sizes vary with i.
func (h Host) XML() string {
	var b strings.Builder
	cores := max(h.CPUs/4, 1)
	fmt.Fprintf(&b, "<node>\n<cpu><mhz>2400</mhz><model>x86_64</model><active>%d</active><nodes>1</nodes><sockets>2</sockets><cores>%d</cores><threads>2</threads></cpu>\n", h.CPUs, cores)
	fmt.Fprintf(&b, "<memory>%d</memory>\n", h.MemoryKiB)
	for i := 0; i < h.Domains; i++ {
		vcpus := 1 << (i % 3)     // 1, 2, 4
		memMiB := 512 * (1 + i%4) // 512..2048
		flavor := fmt.Sprintf("m1.f%d", i%4)
		fmt.Fprintf(&b, `<domain type="test"><name>%s</name><uuid>%s</uuid>
<metadata><nova:instance xmlns:nova="http://openstack.org/xmlns/libvirt/nova/1.1"><nova:name>vm-%d</nova:name>
<nova:flavor name="%s"><nova:memory>%d</nova:memory><nova:disk>20</nova:disk><nova:vcpus>%d</nova:vcpus></nova:flavor>
<nova:owner><nova:user uuid="u%d">user%d</nova:user><nova:project uuid="p%d">project%d</nova:project></nova:owner></nova:instance></metadata>
<memory unit="MiB">%d</memory><currentMemory unit="MiB">%d</currentMemory><vcpu>%d</vcpu><os><type arch="x86_64">hvm</type></os>
<devices><disk type="file" device="disk"><source file="/guest/%s.img"/><target dev="vda" bus="virtio"/>
<iotune><total_bytes_sec>%d</total_bytes_sec><total_iops_sec>%d</total_iops_sec></iotune></disk>
<interface type="network"><mac address="52:54:00:%02x:%02x:%02x"/><source network="default"/><target dev="vnet%d"/><model type="virtio"/></interface></devices>
</domain>
`, Name(i), UUID(i), i, flavor, memMiB, vcpus, i%7, i%7, i%5, i%5, memMiB, memMiB, vcpus, Name(i),
			(100+i%10)<<20, 1000+i%10*100, (i>>16)&0xff, (i>>8)&0xff, i&0xff, i)
	}
	b.WriteString(`<network><name>default</name><bridge name="virbr0"/><forward/><ip address="192.168.122.1" netmask="255.255.255.0"/></network>
</node>
`)
	return b.String()
}

// Write stores h in dir and returns the test-driver URI for it.
func (h Host) Write(dir string) (string, error) {
	path, err := filepath.Abs(filepath.Join(dir, fmt.Sprintf("host-%d.xml", h.Domains)))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(h.XML()), 0o644); err != nil {
		return "", fmt.Errorf("write test host: %w", err)
	}
	return "test://" + path, nil
}
