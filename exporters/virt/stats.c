#include <stdlib.h>
#include <string.h>

#include "stats.h"

int ballastAllDomainStats(virConnectPtr conn, unsigned int stats, unsigned int flags,
                          virDomainStatsRecordPtr **records, virErrorPtr err)
{
    int n = virConnectGetAllDomainStats(conn, stats, records, flags);
    if (n < 0)
        virCopyLastError(err);
    return n;
}

/* ballastDomainUUIDs writes the UUID string of every record, each in
 * VIR_UUID_STRING_BUFLEN bytes; a failure leaves an empty string. */
void ballastDomainUUIDs(virDomainStatsRecordPtr *records, int n, char *uuids)
{
    for (int i = 0; i < n; i++) {
        char *out = uuids + (size_t)i * VIR_UUID_STRING_BUFLEN;
        if (virDomainGetUUIDString(records[i]->dom, out) < 0)
            out[0] = '\0';
    }
}

void ballastFreeDomainStats(virDomainStatsRecordPtr *records)
{
    virDomainStatsRecordListFree(records);
}

char *ballastDomainXML(virDomainPtr dom, virErrorPtr err)
{
    char *xml = virDomainGetXMLDesc(dom, 0);
    if (xml == NULL)
        virCopyLastError(err);
    return xml;
}

void ballastFree(void *p)
{
    free(p);
}

static int lastCode(void)
{
    virErrorPtr e = virGetLastError();
    return e == NULL ? VIR_ERR_OK : e->code;
}

/* noSupport says the driver lacks the call (the test driver lacks several):
 * the same test as virt.IsNoSupport. */
static int noSupport(void)
{
    int code = lastCode();
    return code == VIR_ERR_NO_SUPPORT || code == VIR_ERR_ARGUMENT_UNSUPPORTED;
}

/* ballastSingleStats makes the single-domain calls that fill in what
 * virConnectGetAllDomainStats left out: info, memory statistics, vCPUs, and
 * block and interface statistics of the devices named (NUL-separated).
 * Missing support and devices without statistics are skipped; any other
 * failure (the domain vanished) fails the whole call. */
int ballastSingleStats(virDomainPtr dom, ballastSingle *out, virVcpuInfoPtr vcpus, int maxvcpus,
                       const char *disks, int ndisks, ballastBlock *blocks,
                       const char *nics, int nnics, ballastNet *nets, virErrorPtr err)
{
    if (virDomainGetInfo(dom, &out->info) < 0)
        goto error;
    out->nmem = virDomainMemoryStats(dom, out->mem, ballastMemStatMax, 0);
    if (out->nmem < 0) {
        if (!noSupport())
            goto error;
        out->nmem = 0;
    }
    out->nvcpus = 0;
    out->wantVcpus = out->info.nrVirtCpu;
    if (out->wantVcpus > 0 && out->wantVcpus <= maxvcpus) {
        int n = virDomainGetVcpus(dom, vcpus, out->wantVcpus, NULL, 0);
        if (n < 0) {
            if (!noSupport())
                goto error;
            out->wantVcpus = 0;
        } else {
            out->nvcpus = n;
        }
    }
    for (int i = 0; i < ndisks; i++, disks += strlen(disks) + 1) {
        blocks[i].ok = 0;
        blocks[i].infoOK = 0;
        if (virDomainBlockStats(dom, disks, &blocks[i].stats, sizeof(blocks[i].stats)) < 0) {
            /* An empty cdrom drive has no statistics. */
            if (noSupport() || lastCode() == VIR_ERR_INVALID_ARG || lastCode() == VIR_ERR_OPERATION_INVALID)
                continue;
            goto error;
        }
        blocks[i].ok = 1;
        blocks[i].infoOK = virDomainGetBlockInfo(dom, disks, &blocks[i].info, 0) == 0;
    }
    for (int i = 0; i < nnics; i++, nics += strlen(nics) + 1) {
        nets[i].ok = 0;
        if (virDomainInterfaceStats(dom, nics, &nets[i].stats, sizeof(nets[i].stats)) < 0) {
            if (noSupport() || lastCode() == VIR_ERR_INVALID_ARG)
                continue;
            goto error;
        }
        nets[i].ok = 1;
    }
    return 0;

error:
    virCopyLastError(err);
    return -1;
}

int ballastJobStats(virDomainPtr dom, int *type, virTypedParameterPtr *params, int *nparams,
                    virErrorPtr err)
{
    if (virDomainGetJobStats(dom, type, params, nparams, 0) < 0) {
        virCopyLastError(err);
        return -1;
    }
    return 0;
}

void ballastFreeParams(virTypedParameterPtr params, int nparams)
{
    virTypedParamsFree(params, nparams);
}
