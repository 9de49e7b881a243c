/*
 * C side of stats.go: each function makes one or more libvirt calls in a
 * single cgo transition and copies the thread-local libvirt error into err
 * on failure, as the Go binding's wrappers do.
 */
#ifndef BALLAST_VIRT_STATS_H
#define BALLAST_VIRT_STATS_H

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

/* ballastMemStatMax bounds virDomainMemoryStats; libvirt 9.0 has 13 tags. */
#define ballastMemStatMax 16

/* ballastSingle is what the single-domain calls return besides devices. */
typedef struct {
    virDomainInfo info;
    int nmem;
    virDomainMemoryStatStruct mem[ballastMemStatMax];
    int nvcpus;      /* vCPUs written to the caller's buffer */
    int wantVcpus;   /* vCPUs the domain has; > buffer size: call again */
} ballastSingle;

typedef struct {
    int ok;          /* 0: the device has no statistics (an empty cdrom) */
    virDomainBlockStatsStruct stats;
    int infoOK;
    virDomainBlockInfo info;
} ballastBlock;

typedef struct {
    int ok;
    virDomainInterfaceStatsStruct stats;
} ballastNet;

int ballastAllDomainStats(virConnectPtr conn, unsigned int stats, unsigned int flags,
                          virDomainStatsRecordPtr **records, virErrorPtr err);
void ballastDomainUUIDs(virDomainStatsRecordPtr *records, int n, char *uuids);
void ballastFreeDomainStats(virDomainStatsRecordPtr *records);
char *ballastDomainXML(virDomainPtr dom, virErrorPtr err);
void ballastFree(void *p);
int ballastSingleStats(virDomainPtr dom, ballastSingle *out, virVcpuInfoPtr vcpus, int maxvcpus,
                       const char *disks, int ndisks, ballastBlock *blocks,
                       const char *nics, int nnics, ballastNet *nets, virErrorPtr err);
int ballastJobStats(virDomainPtr dom, int *type, virTypedParameterPtr *params, int *nparams,
                    virErrorPtr err);
void ballastFreeParams(virTypedParameterPtr params, int nparams);

#endif
