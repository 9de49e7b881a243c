// Package domxml parses libvirt domain XML (virDomainGetXMLDesc output) into
// the few facts Ballast's collectors and inventory need: sizes, devices,
// IO limits and the OpenStack Nova metadata block.
//
// The XML comes from libvirtd and, through the metadata element, from
// whoever defined the domain, so it is untrusted input: parsing never
// panics, bounds what it keeps, and has a fuzz test. This package must not
// talk to libvirt; it is pure Go so collectors can test without cgo.
package domxml

import (
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// maxXMLBytes bounds the document Parse accepts; real domain XML is a few KiB.
const maxXMLBytes = 4 << 20

// Domain is what Ballast reads from one domain's XML.
type Domain struct {
	Name   string
	UUID   string
	Type   string // kvm, qemu, test
	OSType string // hvm
	Arch   string
	// Machine is the machine type, e.g. pc-q35-7.2.
	Machine string
	// MaxMemoryBytes is <memory>, the boot-time maximum.
	MaxMemoryBytes uint64
	// CurrentMemoryBytes is <currentMemory>, the balloon target.
	CurrentMemoryBytes uint64
	// VCPUs is the maximum vCPU count; CurrentVCPUs the online ones.
	VCPUs, CurrentVCPUs uint64
	Disks               []Disk
	Interfaces          []Interface
	// BlkioWeight is <blkiotune><weight> (0: unset).
	BlkioWeight uint64
	// BlkioDevices are the per-host-device limits of <blkiotune>.
	BlkioDevices []BlkioDevice
	// Nova is the OpenStack Nova metadata, nil when absent.
	Nova *Nova
}

// Disk is one <disk> device.
type Disk struct {
	Type           string // file, block, network, volume
	Device         string // disk, cdrom, floppy, lun
	DriverName     string
	DriverType     string // raw, qcow2
	DriverCache    string
	DriverDiscard  string
	Source         string // file, dev, pool/volume or protocol name
	SourceProtocol string // rbd, nbd, iscsi
	TargetDevice   string // vda
	TargetBus      string // virtio
	Serial         string
	IOTune         IOTune
}

// IOTune is a disk's <iotune> limits; zero means unlimited.
type IOTune struct {
	TotalBytesSec uint64
	ReadBytesSec  uint64
	WriteBytesSec uint64
	TotalIOPSSec  uint64
	ReadIOPSSec   uint64
	WriteIOPSSec  uint64
}

// IsZero reports whether no limit is set.
func (t IOTune) IsZero() bool { return t == IOTune{} }

// BlkioDevice is one <blkiotune><device> entry (cgroup blkio throttling).
type BlkioDevice struct {
	Path          string
	Weight        uint64
	ReadBytesSec  uint64
	WriteBytesSec uint64
	ReadIOPSSec   uint64
	WriteIOPSSec  uint64
}

// Interface is one <interface> device.
type Interface struct {
	Type         string // network, bridge, ethernet, user
	MAC          string
	SourceBridge string
	Source       string // network name, bridge or host device
	TargetDevice string // vnet0, tap...
	ModelType    string // virtio
	MTU          uint64
}

// Nova is the <nova:instance> metadata OpenStack Nova writes into every
// domain it defines.
type Nova struct {
	Name        string // the server's display name
	FlavorName  string
	FlavorVCPUs uint64
	// FlavorMemoryMiB and FlavorDiskGiB are as Nova writes them.
	FlavorMemoryMiB uint64
	FlavorDiskGiB   uint64
	UserID          string
	UserName        string
	ProjectID       string
	ProjectName     string
}

// novaNamespacePrefix matches Nova's versioned metadata namespaces (1.0–1.2).
const novaNamespacePrefix = "http://openstack.org/xmlns/libvirt/nova/"

type xmlSized struct {
	Unit  string `xml:"unit,attr"`
	Value string `xml:",chardata"`
}

type xmlVCPU struct {
	Current string `xml:"current,attr"`
	Value   string `xml:",chardata"`
}

type xmlDomain struct {
	Type          string   `xml:"type,attr"`
	Name          string   `xml:"name"`
	UUID          string   `xml:"uuid"`
	Memory        xmlSized `xml:"memory"`
	CurrentMemory xmlSized `xml:"currentMemory"`
	VCPU          xmlVCPU  `xml:"vcpu"`
	OS            struct {
		Type struct {
			Arch    string `xml:"arch,attr"`
			Machine string `xml:"machine,attr"`
			Value   string `xml:",chardata"`
		} `xml:"type"`
	} `xml:"os"`
	Blkiotune struct {
		Weight  string `xml:"weight"`
		Devices []struct {
			Path          string `xml:"path"`
			Weight        string `xml:"weight"`
			ReadBytesSec  string `xml:"read_bytes_sec"`
			WriteBytesSec string `xml:"write_bytes_sec"`
			ReadIOPSSec   string `xml:"read_iops_sec"`
			WriteIOPSSec  string `xml:"write_iops_sec"`
		} `xml:"device"`
	} `xml:"blkiotune"`
	Devices struct {
		Disks []struct {
			Type   string `xml:"type,attr"`
			Device string `xml:"device,attr"`
			Driver struct {
				Name    string `xml:"name,attr"`
				Type    string `xml:"type,attr"`
				Cache   string `xml:"cache,attr"`
				Discard string `xml:"discard,attr"`
			} `xml:"driver"`
			Source struct {
				File     string `xml:"file,attr"`
				Dev      string `xml:"dev,attr"`
				Name     string `xml:"name,attr"`
				Protocol string `xml:"protocol,attr"`
				Pool     string `xml:"pool,attr"`
				Volume   string `xml:"volume,attr"`
			} `xml:"source"`
			Target struct {
				Dev string `xml:"dev,attr"`
				Bus string `xml:"bus,attr"`
			} `xml:"target"`
			Serial string `xml:"serial"`
			IOTune struct {
				TotalBytesSec string `xml:"total_bytes_sec"`
				ReadBytesSec  string `xml:"read_bytes_sec"`
				WriteBytesSec string `xml:"write_bytes_sec"`
				TotalIOPSSec  string `xml:"total_iops_sec"`
				ReadIOPSSec   string `xml:"read_iops_sec"`
				WriteIOPSSec  string `xml:"write_iops_sec"`
			} `xml:"iotune"`
		} `xml:"disk"`
		Interfaces []struct {
			Type string `xml:"type,attr"`
			MAC  struct {
				Address string `xml:"address,attr"`
			} `xml:"mac"`
			Source struct {
				Bridge  string `xml:"bridge,attr"`
				Network string `xml:"network,attr"`
				Dev     string `xml:"dev,attr"`
			} `xml:"source"`
			Target struct {
				Dev string `xml:"dev,attr"`
			} `xml:"target"`
			Model struct {
				Type string `xml:"type,attr"`
			} `xml:"model"`
			MTU struct {
				Size string `xml:"size,attr"`
			} `xml:"mtu"`
		} `xml:"interface"`
	} `xml:"devices"`
	Metadata struct {
		Elems []xmlNovaInstance `xml:",any"`
	} `xml:"metadata"`
}

type xmlNovaInstance struct {
	XMLName xml.Name
	Name    string `xml:"name"`
	Flavor  struct {
		Name   string `xml:"name,attr"`
		Memory string `xml:"memory"`
		Disk   string `xml:"disk"`
		VCPUs  string `xml:"vcpus"`
	} `xml:"flavor"`
	Owner struct {
		User struct {
			UUID string `xml:"uuid,attr"`
			Name string `xml:",chardata"`
		} `xml:"user"`
		Project struct {
			UUID string `xml:"uuid,attr"`
			Name string `xml:",chardata"`
		} `xml:"project"`
	} `xml:"owner"`
}

// Parse reads one domain XML document. Numbers that do not parse are
// reported as an error naming the element, so a corrupt document never
// yields silently wrong sizes.
func Parse(doc string) (*Domain, error) {
	if len(doc) > maxXMLBytes {
		return nil, fmt.Errorf("domain XML is %d bytes, more than the %d accepted", len(doc), maxXMLBytes)
	}
	var x xmlDomain
	if err := xml.Unmarshal([]byte(doc), &x); err != nil {
		return nil, fmt.Errorf("parse domain XML: %w", err)
	}
	p := parser{}
	d := &Domain{
		Name:               strings.TrimSpace(x.Name),
		UUID:               strings.TrimSpace(x.UUID),
		Type:               x.Type,
		OSType:             strings.TrimSpace(x.OS.Type.Value),
		Arch:               x.OS.Type.Arch,
		Machine:            x.OS.Type.Machine,
		MaxMemoryBytes:     p.size("memory", x.Memory),
		CurrentMemoryBytes: p.size("currentMemory", x.CurrentMemory),
		VCPUs:              p.uint("vcpu", x.VCPU.Value),
		BlkioWeight:        p.uint("blkiotune/weight", x.Blkiotune.Weight),
	}
	d.CurrentVCPUs = d.VCPUs
	if x.VCPU.Current != "" {
		d.CurrentVCPUs = p.uint("vcpu@current", x.VCPU.Current)
	}
	if d.CurrentMemoryBytes == 0 {
		d.CurrentMemoryBytes = d.MaxMemoryBytes
	}
	for _, b := range x.Blkiotune.Devices {
		d.BlkioDevices = append(d.BlkioDevices, BlkioDevice{
			Path:          b.Path,
			Weight:        p.uint("blkiotune/device/weight", b.Weight),
			ReadBytesSec:  p.uint("blkiotune/device/read_bytes_sec", b.ReadBytesSec),
			WriteBytesSec: p.uint("blkiotune/device/write_bytes_sec", b.WriteBytesSec),
			ReadIOPSSec:   p.uint("blkiotune/device/read_iops_sec", b.ReadIOPSSec),
			WriteIOPSSec:  p.uint("blkiotune/device/write_iops_sec", b.WriteIOPSSec),
		})
	}
	for _, k := range x.Devices.Disks {
		src := k.Source.File
		for _, alt := range []string{k.Source.Dev, k.Source.Name} {
			if src == "" {
				src = alt
			}
		}
		if src == "" && k.Source.Volume != "" {
			src = k.Source.Pool + "/" + k.Source.Volume
		}
		d.Disks = append(d.Disks, Disk{
			Type: k.Type, Device: k.Device,
			DriverName: k.Driver.Name, DriverType: k.Driver.Type, DriverCache: k.Driver.Cache, DriverDiscard: k.Driver.Discard,
			Source: src, SourceProtocol: k.Source.Protocol,
			TargetDevice: k.Target.Dev, TargetBus: k.Target.Bus,
			Serial: strings.TrimSpace(k.Serial),
			IOTune: IOTune{
				TotalBytesSec: p.uint("iotune/total_bytes_sec", k.IOTune.TotalBytesSec),
				ReadBytesSec:  p.uint("iotune/read_bytes_sec", k.IOTune.ReadBytesSec),
				WriteBytesSec: p.uint("iotune/write_bytes_sec", k.IOTune.WriteBytesSec),
				TotalIOPSSec:  p.uint("iotune/total_iops_sec", k.IOTune.TotalIOPSSec),
				ReadIOPSSec:   p.uint("iotune/read_iops_sec", k.IOTune.ReadIOPSSec),
				WriteIOPSSec:  p.uint("iotune/write_iops_sec", k.IOTune.WriteIOPSSec),
			},
		})
	}
	for _, n := range x.Devices.Interfaces {
		src := n.Source.Network
		for _, alt := range []string{n.Source.Bridge, n.Source.Dev} {
			if src == "" {
				src = alt
			}
		}
		d.Interfaces = append(d.Interfaces, Interface{
			Type: n.Type, MAC: n.MAC.Address, SourceBridge: n.Source.Bridge, Source: src,
			TargetDevice: n.Target.Dev, ModelType: n.Model.Type,
			MTU: p.uint("interface/mtu@size", n.MTU.Size),
		})
	}
	for _, m := range x.Metadata.Elems {
		if m.XMLName.Local != "instance" || !strings.HasPrefix(m.XMLName.Space, novaNamespacePrefix) {
			continue
		}
		d.Nova = &Nova{
			Name:            strings.TrimSpace(m.Name),
			FlavorName:      m.Flavor.Name,
			FlavorVCPUs:     p.uint("nova:flavor/vcpus", m.Flavor.VCPUs),
			FlavorMemoryMiB: p.uint("nova:flavor/memory", m.Flavor.Memory),
			FlavorDiskGiB:   p.uint("nova:flavor/disk", m.Flavor.Disk),
			UserID:          m.Owner.User.UUID,
			UserName:        strings.TrimSpace(m.Owner.User.Name),
			ProjectID:       m.Owner.Project.UUID,
			ProjectName:     strings.TrimSpace(m.Owner.Project.Name),
		}
		break
	}
	if p.err != nil {
		return nil, fmt.Errorf("domain %q: %w", d.Name, p.err)
	}
	return d, nil
}

// parser keeps the first number error so Parse reads as a list of fields.
type parser struct{ err error }

func (p *parser) uint(field, s string) uint64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil && p.err == nil {
		p.err = fmt.Errorf("%s: %q is not a non-negative integer", field, s)
	}
	return v
}

// unitBytes maps libvirt's scaled-integer units to bytes; libvirt's default
// for memory elements is KiB.
var unitBytes = map[string]uint64{
	"b": 1, "bytes": 1,
	"kb": 1000, "k": 1024, "kib": 1024,
	"mb": 1000 * 1000, "m": 1 << 20, "mib": 1 << 20,
	"gb": 1000 * 1000 * 1000, "g": 1 << 30, "gib": 1 << 30,
	"tb": 1000 * 1000 * 1000 * 1000, "t": 1 << 40, "tib": 1 << 40,
}

func (p *parser) size(field string, s xmlSized) uint64 {
	v := p.uint(field, s.Value)
	unit := strings.ToLower(strings.TrimSpace(s.Unit))
	if unit == "" {
		unit = "kib"
	}
	mult, ok := unitBytes[unit]
	if !ok {
		if p.err == nil {
			p.err = fmt.Errorf("%s: unit %q is not a libvirt size unit", field, s.Unit)
		}
		return 0
	}
	if v != 0 && v > ^uint64(0)/mult {
		if p.err == nil {
			p.err = fmt.Errorf("%s: %d %s overflows 64 bits", field, v, s.Unit)
		}
		return 0
	}
	return v * mult
}
