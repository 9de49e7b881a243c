package virt

import (
	"testing"

	"github.com/stretchr/testify/require"
	"libvirt.org/go/libvirt"
)

// A record as the qemu driver returns it for a running guest with two
// vCPUs (one offline), a disk, an empty cdrom and a NIC: the parser gives
// what the Go binding's GetAllDomainStats gives.
func TestParseQemuRecord(t *testing.T) {
	params, free := typedParams(
		"state.state", int32(libvirt.DOMAIN_RUNNING), "state.reason", int32(1),
		"cpu.time", uint64(3_000_000_000), "cpu.user", uint64(2_000_000_000), "cpu.system", uint64(900_000_000),
		"balloon.current", uint64(1048576), "balloon.maximum", uint64(2097152), "balloon.swap_in", uint64(1),
		"balloon.swap_out", uint64(2), "balloon.major_fault", uint64(3), "balloon.minor_fault", uint64(4),
		"balloon.unused", uint64(500000), "balloon.available", uint64(1000000), "balloon.usable", uint64(600000),
		"balloon.rss", uint64(900000), "balloon.last-update", uint64(1700000000), "balloon.disk_caches", uint64(7),
		"vcpu.current", uint32(1), "vcpu.maximum", uint32(2),
		"vcpu.0.state", int32(1), "vcpu.0.time", uint64(2_500_000_000), "vcpu.0.wait", uint64(5), "vcpu.0.delay", uint64(6),
		"vcpu.0.halted", true,
		"net.count", uint32(1), "net.0.name", "tap0", "net.0.rx.bytes", uint64(10), "net.0.rx.pkts", uint64(11),
		"net.0.rx.errs", uint64(12), "net.0.rx.drop", uint64(13), "net.0.tx.bytes", uint64(14), "net.0.tx.pkts", uint64(15),
		"net.0.tx.errs", uint64(16), "net.0.tx.drop", uint64(17),
		"block.count", uint32(2), "block.0.name", "vda", "block.0.path", "/images/a.qcow2", "block.0.backingIndex", uint32(1),
		"block.0.rd.reqs", uint64(20), "block.0.rd.bytes", uint64(21), "block.0.rd.times", uint64(22),
		"block.0.wr.reqs", uint64(23), "block.0.wr.bytes", uint64(24), "block.0.wr.times", uint64(25),
		"block.0.fl.reqs", uint64(26), "block.0.fl.times", uint64(27), "block.0.allocation", uint64(28),
		"block.0.capacity", uint64(29), "block.0.physical", uint64(30),
		"block.1.name", "hdc", // an empty cdrom: a name and nothing else
		"vm.unknown.field", uint64(99), "perf.cmt", uint64(1), // groups the parser leaves alone
	)
	defer free()
	s := parseRecord(params)
	require.Equal(t, &libvirt.DomainStatsState{StateSet: true, State: libvirt.DOMAIN_RUNNING, ReasonSet: true, Reason: 1}, s.State)
	require.Equal(t, &libvirt.DomainStatsCPU{TimeSet: true, Time: 3_000_000_000, UserSet: true, User: 2_000_000_000,
		SystemSet: true, System: 900_000_000}, s.Cpu)
	require.Equal(t, &libvirt.DomainStatsBalloon{CurrentSet: true, Current: 1048576, MaximumSet: true, Maximum: 2097152,
		SwapInSet: true, SwapIn: 1, SwapOutSet: true, SwapOut: 2, MajorFaultSet: true, MajorFault: 3, MinorFaultSet: true, MinorFault: 4,
		UnusedSet: true, Unused: 500000, AvailableSet: true, Available: 1000000, UsableSet: true, Usable: 600000,
		RssSet: true, Rss: 900000, LastUpdateSet: true, LastUpdate: 1700000000, DiskCachesSet: true, DiskCaches: 7}, s.Balloon)
	require.Equal(t, []libvirt.DomainStatsVcpu{
		{StateSet: true, State: libvirt.VCPU_RUNNING, TimeSet: true, Time: 2_500_000_000, WaitSet: true, Wait: 5,
			DelaySet: true, Delay: 6, HaltedSet: true, Halted: true},
		{StateSet: true, State: libvirt.VCPU_OFFLINE}, // no field: offline, as the binding reports it
	}, s.Vcpu)
	require.Equal(t, []libvirt.DomainStatsNet{{NameSet: true, Name: "tap0", RxBytesSet: true, RxBytes: 10, RxPktsSet: true, RxPkts: 11,
		RxErrsSet: true, RxErrs: 12, RxDropSet: true, RxDrop: 13, TxBytesSet: true, TxBytes: 14, TxPktsSet: true, TxPkts: 15,
		TxErrsSet: true, TxErrs: 16, TxDropSet: true, TxDrop: 17}}, s.Net)
	require.Equal(t, []libvirt.DomainStatsBlock{
		{NameSet: true, Name: "vda", PathSet: true, Path: "/images/a.qcow2", BackingIndexSet: true, BackingIndex: 1,
			RdReqsSet: true, RdReqs: 20, RdBytesSet: true, RdBytes: 21, RdTimesSet: true, RdTimes: 22,
			WrReqsSet: true, WrReqs: 23, WrBytesSet: true, WrBytes: 24, WrTimesSet: true, WrTimes: 25,
			FlReqsSet: true, FlReqs: 26, FlTimesSet: true, FlTimes: 27, AllocationSet: true, Allocation: 28,
			CapacitySet: true, Capacity: 29, PhysicalSet: true, Physical: 30},
		{NameSet: true, Name: "hdc"},
	}, s.Block)
}

// What the test driver returns (state only), a shut-off domain without
// vCPU counts, and records whose indexes run past their counts or are not
// numbers.
func TestParseSparseAndOddRecords(t *testing.T) {
	params, free := typedParams("state.state", int32(libvirt.DOMAIN_SHUTOFF), "state.reason", int32(2))
	defer free()
	s := parseRecord(params)
	require.Equal(t, libvirt.DOMAIN_SHUTOFF, s.State.State)
	require.Nil(t, s.Cpu)
	require.Nil(t, s.Balloon)
	require.Empty(t, s.Vcpu)
	require.Empty(t, s.Block)
	require.Empty(t, s.Net)

	params, free = typedParams(
		"vcpu.current", uint32(1), // no maximum: current bounds the list
		"vcpu.0.time", uint64(1), "vcpu.3.time", uint64(9),
		"block.count", uint32(1), "block.0.name", "vda", "block.5.rd.bytes", uint64(1),
		"block.x.rd.bytes", uint64(1), "block.99999.rd.bytes", uint64(1), "block.", uint64(1),
		"net.0.name", "tap0", // no count: dropped, as the binding drops it
	)
	defer free()
	s = parseRecord(params)
	require.Equal(t, []libvirt.DomainStatsVcpu{{TimeSet: true, Time: 1}}, s.Vcpu)
	require.Equal(t, []libvirt.DomainStatsBlock{{NameSet: true, Name: "vda"}}, s.Block)
	require.Empty(t, s.Net)
}
