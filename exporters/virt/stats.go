package virt

/*
#cgo pkg-config: libvirt
#include <malloc.h>
#include <stdlib.h>
#include "stats.h"
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"libvirt.org/go/libvirt"

	"github.com/ballast-cloud/ballast/exporters/domxml"
)

// This file reads domain statistics straight from libvirt's C API instead of
// through the Go binding. The binding's GetAllDomainStats unpacks every
// group it knows for every domain with one cgo call and one C string per
// field it looks for, whatever was asked, and asks libvirtd for each
// domain's maximum vCPUs besides: at 1000 domains that was about 90 ms of
// CPU per scrape on the test driver, and 1000 extra RPCs on a qemu host. One
// pass over each record's parameters in Go does the same work without a
// cgo call per field.

// DomainStats is one domain's statistics, in libvirt's units (KiB,
// nanoseconds), with the binding's types and their meaning: a group is nil
// or empty when libvirt returned nothing of it.
type DomainStats struct {
	UUID    string
	State   *libvirt.DomainStatsState
	Cpu     *libvirt.DomainStatsCPU // named as in the binding
	Balloon *libvirt.DomainStatsBalloon
	Vcpu    []libvirt.DomainStatsVcpu
	Block   []libvirt.DomainStatsBlock
	Net     []libvirt.DomainStatsNet
}

// StatsList is the result of one virConnectGetAllDomainStats call. It holds
// libvirt's records (and through them the domains) until Close.
type StatsList struct {
	Domains []DomainStats
	records *C.virDomainStatsRecordPtr
	recs    []C.virDomainStatsRecordPtr
}

// ReadDomainStats asks libvirt for the given statistics groups of every
// domain, defined or running, in one call.
func ReadDomainStats(conn *libvirt.Connect, groups libvirt.DomainStatsTypes, flags libvirt.ConnectGetAllDomainStatsFlags) (*StatsList, error) {
	raw, err := conn.RawPtr()
	if err != nil {
		return nil, err
	}
	defer func() { _, _ = libvirt.CloseRawPtr(raw) }()
	var cerr C.virError
	l := &StatsList{}
	n := C.ballastAllDomainStats(C.virConnectPtr(unsafe.Pointer(raw)), C.uint(groups), C.uint(flags), &l.records, &cerr)
	if n < 0 {
		return nil, goError(&cerr)
	}
	if n == 0 {
		l.Close()
		return l, nil
	}
	l.recs = unsafe.Slice(l.records, int(n))
	uuids := make([]byte, int(n)*C.VIR_UUID_STRING_BUFLEN)
	C.ballastDomainUUIDs(l.records, n, (*C.char)(unsafe.Pointer(&uuids[0])))
	l.Domains = make([]DomainStats, n)
	var p parser
	for i, rec := range l.recs {
		u := uuids[i*C.VIR_UUID_STRING_BUFLEN : (i+1)*C.VIR_UUID_STRING_BUFLEN]
		l.Domains[i].UUID = string(u[:max(bytes.IndexByte(u, 0), 0)])
		p.record(&l.Domains[i], unsafe.Slice(rec.params, int(rec.nparams)))
	}
	return l, nil
}

// Len returns the number of domains.
func (l *StatsList) Len() int { return len(l.Domains) }

// Close releases libvirt's records.
func (l *StatsList) Close() {
	if l.records != nil {
		C.ballastFreeDomainStats(l.records)
		l.records, l.recs = nil, nil
	}
}

// XML fetches and parses the live XML of domain i.
func (l *StatsList) XML(i int) (*domxml.Domain, error) {
	var cerr C.virError
	doc := C.ballastDomainXML(l.recs[i].dom, &cerr)
	if doc == nil {
		return nil, fmt.Errorf("domain XML: %w", goError(&cerr))
	}
	defer C.ballastFree(unsafe.Pointer(doc))
	return domxml.Parse(C.GoString(doc))
}

// FillFromSingleCalls fills the groups GetAllDomainStats left empty for
// domain i (the test driver returns only state) from the single-domain
// calls, in the same units, for the devices of its description x. Devices
// without statistics (an empty cdrom) and calls the driver lacks are left
// out; any other failure, such as the domain having vanished, is returned.
//
// It is safe to call for different domains concurrently.
func (l *StatsList) FillFromSingleCalls(i int, x *domxml.Domain) error {
	s := &l.Domains[i]
	sc := scratchPool.Get().(*scratch)
	defer scratchPool.Put(sc)
	sc.reset()
	for _, k := range x.Disks {
		if k.TargetDevice != "" {
			sc.disks = append(append(sc.disks, k.TargetDevice...), 0)
			sc.diskNames = append(sc.diskNames, k.TargetDevice)
			sc.blocks = append(sc.blocks, C.ballastBlock{})
		}
	}
	for _, n := range x.Interfaces {
		if n.TargetDevice != "" {
			sc.nics = append(append(sc.nics, n.TargetDevice...), 0)
			sc.nicNames = append(sc.nicNames, n.TargetDevice)
			sc.nets = append(sc.nets, C.ballastNet{})
		}
	}
	if want := int(min(max(x.VCPUs, x.CurrentVCPUs, 1), maxDevices)); len(sc.vcpus) < want {
		sc.vcpus = make([]C.virVcpuInfo, want)
	}
	out := &sc.out
	for {
		var cerr C.virError
		if C.ballastSingleStats(l.recs[i].dom, out, &sc.vcpus[0], C.int(len(sc.vcpus)),
			cstrings(sc.disks), C.int(len(sc.blocks)), first(sc.blocks), cstrings(sc.nics), C.int(len(sc.nets)), first(sc.nets), &cerr) < 0 {
			return goError(&cerr)
		}
		if int(out.wantVcpus) <= len(sc.vcpus) || out.wantVcpus > maxDevices {
			break
		}
		// More vCPUs than the description says: hot-plugged since.
		sc.vcpus = make([]C.virVcpuInfo, out.wantVcpus)
	}
	vcpus, blocks, nets := sc.vcpus, sc.blocks, sc.nets
	s.Cpu = &libvirt.DomainStatsCPU{TimeSet: true, Time: uint64(out.info.cpuTime)}
	b := &libvirt.DomainStatsBalloon{CurrentSet: true, Current: uint64(out.info.memory), MaximumSet: true, Maximum: uint64(out.info.maxMem)}
	s.Balloon = b
	for _, m := range out.mem[:out.nmem] {
		if tag := int(m.tag); tag >= 0 && tag < len(memStatFields) && memStatFields[tag] != nil {
			balloonField(b, memStatFields[tag], uint64(m.val))
		}
	}
	// The groups are replaced, not appended to: a driver that returned
	// some of them without CPU time would otherwise report them twice.
	s.Vcpu, s.Block, s.Net = nil, nil, nil
	for _, v := range vcpus[:out.nvcpus] {
		s.Vcpu = append(s.Vcpu, libvirt.DomainStatsVcpu{StateSet: true, State: libvirt.VcpuState(v.state), TimeSet: true, Time: uint64(v.cpuTime)})
	}
	for d, name := range sc.diskNames {
		c := &blocks[d]
		if c.ok == 0 {
			continue
		}
		st := &c.stats
		blk := libvirt.DomainStatsBlock{NameSet: true, Name: name,
			RdReqsSet: true, RdReqs: uint64(st.rd_req), RdBytesSet: true, RdBytes: uint64(st.rd_bytes),
			WrReqsSet: true, WrReqs: uint64(st.wr_req), WrBytesSet: true, WrBytes: uint64(st.wr_bytes)}
		if c.infoOK != 0 {
			blk.CapacitySet, blk.Capacity, blk.AllocationSet, blk.Allocation = true, uint64(c.info.capacity), true, uint64(c.info.allocation)
		}
		s.Block = append(s.Block, blk)
	}
	for d, name := range sc.nicNames {
		c := &nets[d]
		if c.ok == 0 {
			continue
		}
		st := &c.stats
		s.Net = append(s.Net, libvirt.DomainStatsNet{NameSet: true, Name: name,
			RxBytesSet: true, RxBytes: uint64(st.rx_bytes), RxPktsSet: true, RxPkts: uint64(st.rx_packets),
			RxErrsSet: true, RxErrs: uint64(st.rx_errs), RxDropSet: true, RxDrop: uint64(st.rx_drop),
			TxBytesSet: true, TxBytes: uint64(st.tx_bytes), TxPktsSet: true, TxPkts: uint64(st.tx_packets),
			TxErrsSet: true, TxErrs: uint64(st.tx_errs), TxDropSet: true, TxDrop: uint64(st.tx_drop)})
	}
	return nil
}

// scratch is what one FillFromSingleCalls hands to C; pooled, because a
// scrape fills 1000 domains.
type scratch struct {
	disks, nics         []byte // NUL-separated, for C
	diskNames, nicNames []string
	blocks              []C.ballastBlock
	nets                []C.ballastNet
	vcpus               []C.virVcpuInfo
	out                 C.ballastSingle
}

var scratchPool = sync.Pool{New: func() any { return &scratch{} }}

func (s *scratch) reset() {
	s.disks, s.nics, s.blocks, s.nets = s.disks[:0], s.nics[:0], s.blocks[:0], s.nets[:0]
	s.diskNames, s.nicNames = s.diskNames[:0], s.nicNames[:0]
}

// first points C at the first element of s; nil when s is empty.
func first[T any](s []T) *T {
	if len(s) == 0 {
		return nil
	}
	return &s[0]
}

// cstrings points C at NUL-separated names; nil when there are none.
func cstrings(b []byte) *C.char {
	if len(b) == 0 {
		return nil
	}
	return (*C.char)(unsafe.Pointer(&b[0]))
}

// JobStats returns the statistics of domain i's current job (type 0 when
// none runs, e.g. no migration).
func (l *StatsList) JobStats(i int) (*libvirt.DomainJobInfo, error) {
	var typ, n C.int
	var params C.virTypedParameterPtr
	var cerr C.virError
	if C.ballastJobStats(l.recs[i].dom, &typ, &params, &n, &cerr) < 0 {
		return nil, goError(&cerr)
	}
	defer C.ballastFreeParams(params, n)
	job := &libvirt.DomainJobInfo{Type: libvirt.DomainJobType(typ)}
	if n == 0 {
		return job, nil
	}
	ps := unsafe.Slice(params, int(n))
	for i := range ps {
		p := &ps[i]
		v, ok := paramUint(p)
		if !ok {
			continue
		}
		switch string(paramName(p)) {
		case "time_elapsed":
			job.TimeElapsedSet, job.TimeElapsed = true, v
		case "time_remaining":
			job.TimeRemainingSet, job.TimeRemaining = true, v
		case "data_total":
			job.DataTotalSet, job.DataTotal = true, v
		case "data_processed":
			job.DataProcessedSet, job.DataProcessed = true, v
		case "data_remaining":
			job.DataRemainingSet, job.DataRemaining = true, v
		case "memory_total":
			job.MemTotalSet, job.MemTotal = true, v
		case "memory_processed":
			job.MemProcessedSet, job.MemProcessed = true, v
		case "memory_remaining":
			job.MemRemainingSet, job.MemRemaining = true, v
		case "memory_dirty_rate":
			job.MemDirtyRateSet, job.MemDirtyRate = true, v
		}
	}
	return job, nil
}

// goError turns a copied libvirt error into the binding's error type, so
// IsNoDomain and IsNoSupport work on it.
func goError(e *C.virError) error {
	err := libvirt.Error{Code: libvirt.ErrorNumber(e.code), Domain: libvirt.ErrorDomain(e.domain),
		Message: C.GoString(e.message), Level: libvirt.ErrorLevel(e.level)}
	C.virResetError(e)
	if err.Code == libvirt.ERR_OK {
		return errors.New("libvirt call failed without an error")
	}
	return err
}

// maxDevices bounds the device and vCPU indexes a record may name, so a
// corrupt record cannot make the parser allocate without bound.
const maxDevices = 4096

// parser reads records; it keeps what the groups need between parameters.
type parser struct {
	vcpuCurrent, vcpuMaximum int
	vcpuSeen                 []bool
}

// record fills s from one record's parameters in a single pass, with the
// binding's meaning: vCPUs up to vcpu.maximum (or vcpu.current), those
// without any field reported offline; block and net entries up to their
// count, empty ones left unnamed.
func (p *parser) record(s *DomainStats, params []C.virTypedParameter) {
	p.vcpuCurrent, p.vcpuMaximum = -1, -1
	p.vcpuSeen = p.vcpuSeen[:0]
	blockCount, netCount := -1, -1
	for i := range params {
		prm := &params[i]
		name := paramName(prm)
		group, rest, _ := bytes.Cut(name, []byte{'.'})
		switch string(group) {
		case "state":
			if v, ok := paramInt(prm); ok {
				stateField(groupOf(&s.State), rest, v)
			}
		case "cpu":
			if v, ok := paramUint(prm); ok {
				cpuField(groupOf(&s.Cpu), rest, v)
			}
		case "balloon":
			if v, ok := paramUint(prm); ok {
				balloonField(groupOf(&s.Balloon), rest, v)
			}
		case "vcpu":
			p.vcpu(s, prm, rest)
		case "block":
			device(&s.Block, &blockCount, prm, rest, blockField)
		case "net":
			device(&s.Net, &netCount, prm, rest, netField)
		}
	}
	s.Block = fit(s.Block, blockCount)
	s.Net = fit(s.Net, netCount)
	if p.vcpuMaximum < 0 {
		p.vcpuMaximum = p.vcpuCurrent
	}
	if p.vcpuMaximum > 0 {
		s.Vcpu = fit(s.Vcpu, p.vcpuMaximum)
		for j := range s.Vcpu {
			if j >= len(p.vcpuSeen) || !p.vcpuSeen[j] {
				s.Vcpu[j] = libvirt.DomainStatsVcpu{StateSet: true, State: libvirt.VCPU_OFFLINE}
			}
		}
	} else {
		s.Vcpu = nil
	}
}

// groupOf returns the group *g points to, made on its first field.
func groupOf[T any](g **T) *T {
	if *g == nil {
		*g = new(T)
	}
	return *g
}

func stateField(st *libvirt.DomainStatsState, field []byte, v int64) {
	switch string(field) {
	case "state":
		st.StateSet, st.State = true, libvirt.DomainState(v)
	case "reason":
		st.ReasonSet, st.Reason = true, int(v)
	}
}

func cpuField(c *libvirt.DomainStatsCPU, field []byte, v uint64) {
	switch string(field) {
	case "time":
		c.TimeSet, c.Time = true, v
	case "user":
		c.UserSet, c.User = true, v
	case "system":
		c.SystemSet, c.System = true, v
	}
}

// device reads "<group>.count" into count, or "<group>.<i>.<field>" into
// the i-th entry of list with set.
func device[T any](list *[]T, count *int, prm *C.virTypedParameter, rest []byte, set func(*T, []byte, *C.virTypedParameter)) {
	idx, field, ok := indexed(rest)
	if !ok {
		if string(rest) == "count" {
			if v, ok := paramUint(prm); ok && v <= maxDevices {
				*count = int(v)
			}
		}
		return
	}
	if idx >= len(*list) {
		*list = grow(*list, idx)
	}
	set(&(*list)[idx], field, prm)
}

func (p *parser) vcpu(s *DomainStats, prm *C.virTypedParameter, rest []byte) {
	idx, field, ok := indexed(rest)
	if !ok {
		v, ok := paramUint(prm)
		if !ok || v > maxDevices {
			return
		}
		switch string(rest) {
		case "current":
			p.vcpuCurrent = int(v)
		case "maximum":
			p.vcpuMaximum = int(v)
		}
		return
	}
	if idx >= len(s.Vcpu) {
		s.Vcpu = grow(s.Vcpu, idx)
	}
	for len(p.vcpuSeen) <= idx {
		p.vcpuSeen = append(p.vcpuSeen, false)
	}
	v := &s.Vcpu[idx]
	switch string(field) {
	case "state":
		if n, ok := paramInt(prm); ok {
			v.StateSet, v.State = true, libvirt.VcpuState(n)
		}
	case "time":
		v.Time, v.TimeSet = paramUint(prm)
	case "wait":
		v.Wait, v.WaitSet = paramUint(prm)
	case "delay":
		v.Delay, v.DelaySet = paramUint(prm)
	case "halted":
		if n, ok := paramInt(prm); ok {
			v.HaltedSet, v.Halted = true, n != 0
		}
	default:
		return
	}
	p.vcpuSeen[idx] = true
}

// memStatFields names virDomainMemoryStats' tags as the balloon group of
// the bulk call names the same figures.
var memStatFields = [...][]byte{
	libvirt.DOMAIN_MEMORY_STAT_SWAP_IN: []byte("swap_in"), libvirt.DOMAIN_MEMORY_STAT_SWAP_OUT: []byte("swap_out"),
	libvirt.DOMAIN_MEMORY_STAT_MAJOR_FAULT: []byte("major_fault"), libvirt.DOMAIN_MEMORY_STAT_MINOR_FAULT: []byte("minor_fault"),
	libvirt.DOMAIN_MEMORY_STAT_UNUSED: []byte("unused"), libvirt.DOMAIN_MEMORY_STAT_AVAILABLE: []byte("available"),
	libvirt.DOMAIN_MEMORY_STAT_ACTUAL_BALLOON: []byte("current"), libvirt.DOMAIN_MEMORY_STAT_RSS: []byte("rss"),
	libvirt.DOMAIN_MEMORY_STAT_USABLE: []byte("usable"),
}

func balloonField(b *libvirt.DomainStatsBalloon, field []byte, v uint64) {
	switch string(field) {
	case "current":
		b.CurrentSet, b.Current = true, v
	case "maximum":
		b.MaximumSet, b.Maximum = true, v
	case "swap_in":
		b.SwapInSet, b.SwapIn = true, v
	case "swap_out":
		b.SwapOutSet, b.SwapOut = true, v
	case "major_fault":
		b.MajorFaultSet, b.MajorFault = true, v
	case "minor_fault":
		b.MinorFaultSet, b.MinorFault = true, v
	case "unused":
		b.UnusedSet, b.Unused = true, v
	case "available":
		b.AvailableSet, b.Available = true, v
	case "rss":
		b.RssSet, b.Rss = true, v
	case "usable":
		b.UsableSet, b.Usable = true, v
	case "last-update":
		b.LastUpdateSet, b.LastUpdate = true, v
	case "disk_caches":
		b.DiskCachesSet, b.DiskCaches = true, v
	}
}

func blockField(b *libvirt.DomainStatsBlock, field []byte, prm *C.virTypedParameter) {
	switch string(field) {
	case "name":
		b.NameSet, b.Name = paramString(prm)
		return
	case "path":
		b.PathSet, b.Path = paramString(prm)
		return
	}
	v, ok := paramUint(prm)
	if !ok {
		return
	}
	switch string(field) {
	case "backingIndex":
		b.BackingIndexSet, b.BackingIndex = true, uint(v)
	case "rd.reqs":
		b.RdReqsSet, b.RdReqs = true, v
	case "rd.bytes":
		b.RdBytesSet, b.RdBytes = true, v
	case "rd.times":
		b.RdTimesSet, b.RdTimes = true, v
	case "wr.reqs":
		b.WrReqsSet, b.WrReqs = true, v
	case "wr.bytes":
		b.WrBytesSet, b.WrBytes = true, v
	case "wr.times":
		b.WrTimesSet, b.WrTimes = true, v
	case "fl.reqs":
		b.FlReqsSet, b.FlReqs = true, v
	case "fl.times":
		b.FlTimesSet, b.FlTimes = true, v
	case "errors":
		b.ErrorsSet, b.Errors = true, v
	case "allocation":
		b.AllocationSet, b.Allocation = true, v
	case "capacity":
		b.CapacitySet, b.Capacity = true, v
	case "physical":
		b.PhysicalSet, b.Physical = true, v
	case "threshold":
		b.ThresholdSet, b.Threshold = true, v
	}
}

func netField(n *libvirt.DomainStatsNet, field []byte, prm *C.virTypedParameter) {
	if string(field) == "name" {
		n.NameSet, n.Name = paramString(prm)
		return
	}
	v, ok := paramUint(prm)
	if !ok {
		return
	}
	switch string(field) {
	case "rx.bytes":
		n.RxBytesSet, n.RxBytes = true, v
	case "rx.pkts":
		n.RxPktsSet, n.RxPkts = true, v
	case "rx.errs":
		n.RxErrsSet, n.RxErrs = true, v
	case "rx.drop":
		n.RxDropSet, n.RxDrop = true, v
	case "tx.bytes":
		n.TxBytesSet, n.TxBytes = true, v
	case "tx.pkts":
		n.TxPktsSet, n.TxPkts = true, v
	case "tx.errs":
		n.TxErrsSet, n.TxErrs = true, v
	case "tx.drop":
		n.TxDropSet, n.TxDrop = true, v
	}
}

// indexed splits "3.rd.bytes" into 3 and "rd.bytes".
func indexed(b []byte) (int, []byte, bool) {
	digits, field, ok := bytes.Cut(b, []byte{'.'})
	if !ok || len(digits) == 0 || len(digits) > 4 {
		return 0, nil, false
	}
	n := 0
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, nil, false
		}
		n = n*10 + int(c-'0')
	}
	if n >= maxDevices {
		return 0, nil, false
	}
	return n, field, true
}

// grow extends s so that index i exists.
func grow[T any](s []T, i int) []T {
	for len(s) <= i {
		var zero T
		s = append(s, zero)
	}
	return s
}

// fit sets the length of s to n, the count libvirt announced; without a
// count (n < 0) the entries are dropped, as the binding drops them.
func fit[T any](s []T, n int) []T {
	switch {
	case n <= 0:
		return nil
	case n <= len(s):
		return s[:n]
	default:
		return grow(s, n-1)
	}
}

func paramName(p *C.virTypedParameter) []byte {
	b := unsafe.Slice((*byte)(unsafe.Pointer(&p.field[0])), len(p.field))
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return b[:i]
	}
	return b
}

func paramValue(p *C.virTypedParameter) unsafe.Pointer { return unsafe.Pointer(&p.value[0]) }

// paramUint reads a numeric parameter of any integer type as uint64, as
// the binding's unsigned fields accept.
func paramUint(p *C.virTypedParameter) (uint64, bool) {
	v := paramValue(p)
	switch p._type {
	case C.VIR_TYPED_PARAM_INT:
		return uint64(*(*C.int)(v)), true
	case C.VIR_TYPED_PARAM_UINT:
		return uint64(*(*C.uint)(v)), true
	case C.VIR_TYPED_PARAM_LLONG:
		return uint64(*(*C.longlong)(v)), true
	case C.VIR_TYPED_PARAM_ULLONG:
		return uint64(*(*C.ulonglong)(v)), true
	case C.VIR_TYPED_PARAM_BOOLEAN:
		if *(*C.char)(v) != 0 {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// paramInt reads a numeric parameter as int64, keeping the sign of the
// signed types.
func paramInt(p *C.virTypedParameter) (int64, bool) {
	switch p._type {
	case C.VIR_TYPED_PARAM_INT:
		return int64(*(*C.int)(paramValue(p))), true
	case C.VIR_TYPED_PARAM_LLONG:
		return int64(*(*C.longlong)(paramValue(p))), true
	}
	u, ok := paramUint(p)
	return int64(u), ok
}

// paramString reads a string parameter; the flag comes first to match the
// binding's "NameSet, Name" field order.
func paramString(p *C.virTypedParameter) (bool, string) {
	if p._type != C.VIR_TYPED_PARAM_STRING {
		return false, ""
	}
	s := *(**C.char)(paramValue(p))
	if s == nil {
		return false, ""
	}
	return true, C.GoString(s)
}

// ReleaseCMemory hands the C heap's free pages back to the OS
// (malloc_trim): libvirt frees what each statistics call allocated, and
// glibc keeps it otherwise.
func ReleaseCMemory() { C.malloc_trim(0) }
