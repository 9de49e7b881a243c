package virt

/*
#cgo pkg-config: libvirt
#include <stdlib.h>
#include <libvirt/libvirt.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// typedParams builds a parameter list the way libvirt's drivers do, with
// virTypedParamsAdd*, from name/value pairs (int32, uint32, int64, uint64,
// bool, string). The parser's tests feed it records like those of the qemu
// driver, which the test driver does not produce; cgo is not allowed in
// test files. Release the list with the returned function.
func typedParams(pairs ...any) ([]C.virTypedParameter, func()) {
	if C.virInitialize() < 0 { // done by the first connection otherwise
		panic("virInitialize")
	}
	var params C.virTypedParameterPtr
	var n, capacity C.int
	for i := 0; i+1 < len(pairs); i += 2 {
		name := C.CString(pairs[i].(string))
		var ret C.int
		switch v := pairs[i+1].(type) {
		case int32:
			ret = C.virTypedParamsAddInt(&params, &n, &capacity, name, C.int(v))
		case uint32:
			ret = C.virTypedParamsAddUInt(&params, &n, &capacity, name, C.uint(v))
		case int64:
			ret = C.virTypedParamsAddLLong(&params, &n, &capacity, name, C.longlong(v))
		case uint64:
			ret = C.virTypedParamsAddULLong(&params, &n, &capacity, name, C.ulonglong(v))
		case bool:
			b := C.int(0)
			if v {
				b = 1
			}
			ret = C.virTypedParamsAddBoolean(&params, &n, &capacity, name, b)
		case string:
			s := C.CString(v)
			ret = C.virTypedParamsAddString(&params, &n, &capacity, name, s)
			C.free(unsafe.Pointer(s))
		default:
			panic(fmt.Sprintf("typedParams: %T", v))
		}
		C.free(unsafe.Pointer(name))
		if ret < 0 {
			panic("typedParams: " + pairs[i].(string))
		}
	}
	return unsafe.Slice(params, int(n)), func() { C.virTypedParamsFree(params, n) }
}

// parseRecord runs the parser over one record's parameters.
func parseRecord(params []C.virTypedParameter) DomainStats {
	var s DomainStats
	var p parser
	p.record(&s, params)
	return s
}
