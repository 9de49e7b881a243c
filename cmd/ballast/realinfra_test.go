package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ballast-cloud/ballast/deploy/testenv"
)

// e2eGuest is a 64 MiB TCG guest with no disk: enough to migrate.
const e2eGuest = `<domain type='qemu'><name>%s</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='network'/></os><features><acpi/></features>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model></cpu>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <graphics type='vnc' port='-1' listen='127.0.0.1'/><video><model type='none'/></video>
    <memballoon model='virtio'/></devices></domain>`

// TestRealInfrastructureLoop closes the whole loop on real hypervisors with
// no simulator: two libvirtd hosts run guests; one `ballast exporter` per
// host reports them; the server scrapes the exporters and builds its model
// from their inventory series; a host_maintenance audit plans the
// evacuation of hostA; the applier live-migrates the guests through
// libvirt; the guests then run on hostB.
func TestRealInfrastructureLoop(t *testing.T) {
	const what = "two libvirt hosts (scripts/libvirt-hosts.sh up DIR; . DIR/env)"
	hosts := []struct{ name, uri, migration string }{
		{"hostA", testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTA_URI", what), testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTA_MIGRATION_URI", what)},
		{"hostB", testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTB_URI", what), testenv.RequireEnv(t, "BALLAST_LIBVIRT_HOSTB_MIGRATION_URI", what)},
	}
	// Other packages' tests start guests on these hosts and restart their
	// daemons; evacuating hostA must see only this test's guests.
	testenv.Exclusive(t, hosts[0].uri)
	virsh := func(uri string, args ...string) string {
		out, err := exec.Command("virsh", append([]string{"-c", uri}, args...)...).CombinedOutput()
		require.NoError(t, err, "virsh %v: %s", args, out)
		return string(out)
	}
	dir := t.TempDir()
	guests := []string{"loop-1", "loop-2"}
	for _, g := range guests {
		f := filepath.Join(dir, g+".xml")
		require.NoError(t, os.WriteFile(f, []byte(fmt.Sprintf(e2eGuest, g)), 0o644))
		virsh(hosts[0].uri, "define", f)
		virsh(hosts[0].uri, "start", g)
	}
	t.Cleanup(func() {
		for _, h := range hosts {
			for _, g := range guests {
				_ = exec.Command("virsh", "-c", h.uri, "destroy", g).Run()
				_ = exec.Command("virsh", "-c", h.uri, "undefine", g).Run()
			}
		}
	})

	var targets []string
	for _, h := range hosts {
		addr := freePort(t)
		targets = append(targets, fmt.Sprintf("'%s'", addr))
		exp := exec.Command(binary, "exporter", "--web.listen-address", addr, "--libvirt.uri", h.uri, "--no-collector.ceph",
			"--inventory.disk-path", dir)
		logs := &syncBuffer{}
		exp.Stdout, exp.Stderr = logs, logs
		require.NoError(t, exp.Start())
		t.Cleanup(func() {
			_ = exp.Process.Kill()
			_ = exp.Wait()
			if t.Failed() {
				t.Logf("exporter %s logs:\n%s", h.name, logs.String())
			}
		})
	}
	cfg := filepath.Join(dir, "ballast.yml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
simulator: {enabled: false}
watcher: {auth_strategy: noauth}
scrape_configs:
  - job_name: hypervisors
    scrape_interval: 2s
    static_configs: [{targets: [%s]}]
actuators:
  libvirt:
    hosts:
      - {name: %s, uri: '%s', migration_uri: '%s'}
      - {name: %s, uri: '%s', migration_uri: '%s'}
`, strings.Join(targets, ", "), hosts[0].name, hosts[0].uri, hosts[0].migration, hosts[1].name, hosts[1].uri, hosts[1].migration)), 0o644))
	p := startServer(t, filepath.Join(dir, "data"), "--config.file", cfg)

	v1 := func(method, path string, body any) map[string]any {
		t.Helper()
		return callV1(t, p.url, method, path, body)
	}

	// The model knows both hosts and the guests once the exporters are scraped.
	require.Eventually(t, func() bool {
		v, _, _, err := p.api(t).Query(t.Context(), `count(ballast_inventory_domain_info{domain=~"loop-.*"}) + count(ballast_inventory_host_info)`, time.Now())
		return err == nil && strings.Contains(v.String(), "=> 4")
	}, 60*time.Second, 500*time.Millisecond, "inventory series of both hosts and both guests")

	audit := v1(http.MethodPost, "/v1/audits", map[string]any{
		"audit_type": "ONESHOT", "goal": "cluster_maintaining", "strategy": "host_maintenance",
		"parameters": map[string]any{"maintenance_node": hosts[0].name, "backup_node": hosts[1].name},
	})
	auditID := audit["uuid"].(string)
	var planID string
	require.Eventually(t, func() bool {
		a := v1(http.MethodGet, "/v1/audits/"+auditID, nil)
		require.NotEqual(t, "FAILED", a["state"], "audit failed: %v", a["status_message"])
		if a["state"] != "SUCCEEDED" {
			return false
		}
		plans := v1(http.MethodGet, "/v1/action_plans?audit_uuid="+auditID, nil)["action_plans"].([]any)
		require.Len(t, plans, 1)
		planID = plans[0].(map[string]any)["uuid"].(string)
		return true
	}, 60*time.Second, 250*time.Millisecond, "the audit produces a plan")
	actions := v1(http.MethodGet, "/v1/actions/detail?action_plan_uuid="+planID, nil)["actions"].([]any)
	migrations := 0
	for _, a := range actions {
		if a.(map[string]any)["action_type"] == "migrate" {
			migrations++
		}
	}
	require.Equal(t, len(guests), migrations, "one live migration per guest on %s", hosts[0].name)

	v1(http.MethodPost, "/v1/action_plans/"+planID+"/start", map[string]any{})
	require.Eventually(t, func() bool {
		plan := v1(http.MethodGet, "/v1/action_plans/"+planID, nil)
		require.NotContains(t, []any{"FAILED", "CANCELLED"}, plan["state"], "plan: %v", plan["status_message"])
		return plan["state"] == "SUCCEEDED"
	}, 3*time.Minute, time.Second, "the applier executes the plan")

	onB := virsh(hosts[1].uri, "list", "--name")
	onA := virsh(hosts[0].uri, "list", "--name")
	for _, g := range guests {
		require.Contains(t, onB, g, "%s runs on %s", g, hosts[1].name)
		require.NotContains(t, onA, g, "%s left %s", g, hosts[0].name)
	}
}
