package domxml

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseNova(t *testing.T) {
	doc, err := os.ReadFile("testdata/nova.xml")
	require.NoError(t, err)
	d, err := Parse(string(doc))
	require.NoError(t, err)
	require.Equal(t, &Domain{
		Name: "instance-0000002a", UUID: "4d9e6f7c-6c1a-4c51-9d2e-1f0e3b2a8c11", Type: "kvm",
		OSType: "hvm", Arch: "x86_64", Machine: "pc-q35-7.2",
		MaxMemoryBytes: 2 << 30, CurrentMemoryBytes: 1536 << 20,
		VCPUs: 2, CurrentVCPUs: 1,
		BlkioWeight:  500,
		BlkioDevices: []BlkioDevice{{Path: "/dev/sda", Weight: 200, ReadBytesSec: 10485760}},
		Disks: []Disk{
			{Type: "network", Device: "disk", DriverName: "qemu", DriverType: "raw", DriverCache: "writeback", DriverDiscard: "unmap",
				Source: "vms/4d9e6f7c_disk", SourceProtocol: "rbd", TargetDevice: "vda", TargetBus: "virtio", Serial: "4d9e6f7c",
				IOTune: IOTune{TotalBytesSec: 104857600, ReadIOPSSec: 500, WriteIOPSSec: 250}},
			{Type: "file", Device: "cdrom", DriverName: "qemu", DriverType: "raw",
				Source: "/var/lib/nova/instances/4d9e6f7c/disk.config", TargetDevice: "sda", TargetBus: "sata"},
		},
		Interfaces: []Interface{{Type: "bridge", MAC: "fa:16:3e:12:34:56", SourceBridge: "br-int", Source: "br-int",
			TargetDevice: "tap1234abcd-ef", ModelType: "virtio", MTU: 1450}},
		Nova: &Nova{Name: "web-1", FlavorName: "m1.small", FlavorVCPUs: 2, FlavorMemoryMiB: 2048, FlavorDiskGiB: 20,
			UserID: "8a1b2c3d4e5f40718293a4b5c6d7e8f9", UserName: "alice",
			ProjectID: "0f1e2d3c4b5a49687766554433221100", ProjectName: "shop"},
	}, d)
}

func TestParseUnitsAndErrors(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		wantMem   uint64
		wantErr   string
	}{
		{"default KiB", `<domain><name>a</name><memory>1024</memory></domain>`, 1 << 20, ""},
		{"MiB", `<domain><name>a</name><memory unit="MiB">64</memory></domain>`, 64 << 20, ""},
		{"decimal GB", `<domain><name>a</name><memory unit="GB">2</memory></domain>`, 2e9, ""},
		{"bytes", `<domain><name>a</name><memory unit="b">4096</memory></domain>`, 4096, ""},
		{"bad unit", `<domain><name>a</name><memory unit="parsecs">1</memory></domain>`, 0, `unit "parsecs"`},
		{"bad number", `<domain><name>a</name><memory>-5</memory></domain>`, 0, `memory: "-5"`},
		{"overflow", `<domain><name>a</name><memory unit="TiB">99999999999</memory></domain>`, 0, "overflows"},
		{"not xml", `<domain><name>a`, 0, "parse domain XML"},
		{"foreign metadata ignored", `<domain><name>a</name><memory>1</memory><metadata><x:instance xmlns:x="urn:other"><x:name>n</x:name></x:instance></metadata></domain>`, 1024, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Parse(tc.doc)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantMem, d.MaxMemoryBytes)
			require.Equal(t, tc.wantMem, d.CurrentMemoryBytes, "currentMemory defaults to memory")
			require.Nil(t, d.Nova)
		})
	}
}

func FuzzParse(f *testing.F) {
	doc, err := os.ReadFile("testdata/nova.xml")
	require.NoError(f, err)
	f.Add(string(doc))
	f.Add(`<domain><memory unit="k">1</memory><vcpu current="x">2</vcpu></domain>`)
	f.Fuzz(func(t *testing.T, s string) {
		d, err := Parse(s)
		if err == nil && d == nil {
			t.Fatal("nil domain without error")
		}
	})
}
