/* Plain data helpers of the sandbox API: defaults and verdict names. */
#include "proctor/sandbox.h"

#include <string.h>

void sbx_spec_init(sbx_spec *spec)
{
    memset(spec, 0, sizeof(*spec));
    spec->stdin_fd = -1;
    spec->stdout_fd = -1;
    spec->stderr_fd = -1;
    spec->slot = -1;
    spec->cpu = -1;
    spec->netns_fd = -1;
    spec->profile = "default";
    spec->net = SBX_NET_NONE;
}

const char *sbx_verdict_name(sbx_verdict v)
{
    static const char *const names[] = { "OK", "RE", "TLE", "WLE", "MLE", "OLE", "SV", "IE" };
    if ((unsigned)v < sizeof(names) / sizeof(names[0]))
        return names[v];
    return "IE";
}
