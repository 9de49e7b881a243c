package instance

import (
	"strconv"
	"sync"

	dto "github.com/prometheus/client_model/go"
	"libvirt.org/go/libvirt"

	"github.com/ballast-cloud/ballast/exporters/domxml"
	"github.com/ballast-cloud/ballast/exporters/scrape"
	"github.com/ballast-cloud/ballast/exporters/virt"
)

// domainLabels are the label sets of one domain's series. They come from
// the domain's description alone, so they are built when a description is
// first seen and kept until the XML cache hands out a new one (at most every
// --libvirt.xml-max-age): a scrape then sends 30 series per domain without
// building a label pair. Values are read fresh on every scrape.
//
// A domainLabels is immutable once built; concurrent scrapes share it.
type domainLabels struct {
	x *domxml.Domain // the description they were built from
	// name and uuid are shared by every set of the domain.
	name, uuid *dto.LabelPair
	domain     []*dto.LabelPair // {domain, uuid}
	info, nova []*dto.LabelPair // nova is nil without Nova metadata
	state      libvirt.DomainState
	stateSet   []*dto.LabelPair // for state
	blockInfo  [][]*dto.LabelPair
	ifaceInfo  [][]*dto.LabelPair
	devices    []deviceLabels // disks and interfaces by target device
	vcpus      [][]*dto.LabelPair
}

type deviceLabels struct {
	name   string
	labels []*dto.LabelPair // {domain, target_device, uuid}
}

// newDomainLabels builds the label sets of domain x in state.
func newDomainLabels(x *domxml.Domain, uuid string, state libvirt.DomainState) *domainLabels {
	l := &domainLabels{x: x, name: scrape.Pair("domain", x.Name), uuid: scrape.Pair("uuid", uuid), state: state}
	l.domain = scrape.Labels(l.name, l.uuid)
	l.info = l.with(scrape.Pair("os_type", x.OSType), scrape.Pair("os_type_arch", x.Arch), scrape.Pair("os_type_machine", x.Machine))
	if n := x.Nova; n != nil {
		l.nova = l.with(scrape.Pair("instance_name", n.Name), scrape.Pair("instance_id", uuid),
			scrape.Pair("flavor_name", n.FlavorName), scrape.Pair("user_name", n.UserName), scrape.Pair("user_id", n.UserID),
			scrape.Pair("project_name", n.ProjectName), scrape.Pair("project_id", n.ProjectID))
	}
	l.stateSet = l.with(statePair(state))
	for _, k := range x.Disks {
		l.blockInfo = append(l.blockInfo, l.with(scrape.Pair("disk_type", k.Type), scrape.Pair("target_bus", k.TargetBus),
			scrape.Pair("driver_name", k.DriverName), scrape.Pair("driver_type", k.DriverType), scrape.Pair("driver_cache", k.DriverCache),
			scrape.Pair("driver_discard", k.DriverDiscard), scrape.Pair("source_file", k.Source), scrape.Pair("source_protocol", k.SourceProtocol),
			scrape.Pair("target_device", k.TargetDevice), scrape.Pair("serial", k.Serial)))
		l.addDevice(k.TargetDevice)
	}
	for _, n := range x.Interfaces {
		mtu := ""
		if n.MTU > 0 {
			mtu = strconv.FormatUint(n.MTU, 10)
		}
		l.ifaceInfo = append(l.ifaceInfo, l.with(scrape.Pair("interface_type", n.Type), scrape.Pair("source_bridge", n.SourceBridge),
			scrape.Pair("target_device", n.TargetDevice), scrape.Pair("mac_address", n.MAC), scrape.Pair("model_type", n.ModelType),
			scrape.Pair("mtu_size", mtu)))
		l.addDevice(n.TargetDevice)
	}
	// More vCPUs than this (an odd description) get their sets per scrape.
	for i := range min(max(x.VCPUs, x.CurrentVCPUs), 1024) {
		l.vcpus = append(l.vcpus, l.with(vcpuPair(int(i))))
	}
	return l
}

// with returns the domain's name and uuid with the given pairs, as one set.
func (l *domainLabels) with(pairs ...*dto.LabelPair) []*dto.LabelPair {
	return scrape.Labels(append([]*dto.LabelPair{l.name, l.uuid}, pairs...)...)
}

func (l *domainLabels) addDevice(dev string) {
	if dev == "" {
		return
	}
	for _, d := range l.devices {
		if d.name == dev {
			return
		}
	}
	l.devices = append(l.devices, deviceLabels{name: dev, labels: l.with(scrape.Pair("target_device", dev))})
}

// device returns the set of a disk or interface; one the description does
// not know yet (hot-plugged since it was read) gets a set of its own.
func (l *domainLabels) device(dev string) []*dto.LabelPair {
	for _, d := range l.devices {
		if d.name == dev {
			return d.labels
		}
	}
	return l.with(scrape.Pair("target_device", dev))
}

// vcpu returns the set of vCPU i.
func (l *domainLabels) vcpu(i int) []*dto.LabelPair {
	if i < len(l.vcpus) {
		return l.vcpus[i]
	}
	return l.with(vcpuPair(i))
}

// stateLabels returns the set of libvirt_domain_info_state for state.
func (l *domainLabels) stateLabels(state libvirt.DomainState) []*dto.LabelPair {
	if state == l.state {
		return l.stateSet
	}
	return l.with(statePair(state))
}

// statePairs are the state_desc pairs; they keep the inovex exporter's
// values, which its dashboards match on.
var statePairs = func() map[libvirt.DomainState]*dto.LabelPair {
	m := map[libvirt.DomainState]*dto.LabelPair{}
	for s, text := range map[libvirt.DomainState]string{
		libvirt.DOMAIN_NOSTATE:     "no state",
		libvirt.DOMAIN_RUNNING:     "the domain is running",
		libvirt.DOMAIN_BLOCKED:     "the domain is blocked on resource",
		libvirt.DOMAIN_PAUSED:      "the domain is paused by user",
		libvirt.DOMAIN_SHUTDOWN:    "the domain is being shut down",
		libvirt.DOMAIN_SHUTOFF:     "the domain is shut off",
		libvirt.DOMAIN_CRASHED:     "the domain is crashed",
		libvirt.DOMAIN_PMSUSPENDED: "the domain is suspended by guest power management",
	} {
		m[s] = scrape.Pair("state_desc", text)
	}
	return m
}()

// unknownState labels a state code libvirt added after this table.
var unknownState = scrape.Pair("state_desc", "")

func statePair(s libvirt.DomainState) *dto.LabelPair {
	if p, ok := statePairs[s]; ok {
		return p
	}
	return unknownState
}

// vcpuPairs are the vcpu="<n>" pairs, shared by every domain.
var (
	vcpuMu    sync.Mutex
	vcpuPairs []*dto.LabelPair
)

func vcpuPair(i int) *dto.LabelPair {
	vcpuMu.Lock()
	defer vcpuMu.Unlock()
	for len(vcpuPairs) <= i {
		vcpuPairs = append(vcpuPairs, scrape.Pair("vcpu", strconv.Itoa(len(vcpuPairs))))
	}
	return vcpuPairs[i]
}

// labelsOf returns the label sets of every domain of stats, index for
// index (nil where descs has no description), building those of domains
// new or re-described since the last scrape and forgetting domains gone.
func (c *Collector) labelsOf(stats *virt.StatsList, descs []*domxml.Domain) []*domainLabels {
	return c.labels.Sync(len(descs),
		func(i int) string {
			if descs[i] == nil {
				return ""
			}
			return stats.Domains[i].UUID
		},
		func(i int, l *domainLabels) bool { return l.x == descs[i] },
		func(i int) *domainLabels {
			s := &stats.Domains[i]
			var state libvirt.DomainState
			if s.State != nil {
				state = s.State.State
			}
			return newDomainLabels(descs[i], s.UUID, state)
		})
}
