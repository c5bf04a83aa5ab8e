/* The sandbox result object and its isolation object as JSON (DESIGN.md "Sandbox result
 * object"). */
#include "proctor/report.h"

json_t *pr_isolation_json(const sbx_isolation *iso)
{
    return json_pack("{s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:s, s:b, s:b}", "userns",
                     iso->userns, "pidns", iso->pidns, "netns", iso->netns, "mntns", iso->mntns,
                     "ipcns", iso->ipcns, "utsns", iso->utsns, "cgroupns", iso->cgroupns, "seccomp",
                     iso->seccomp, "cgroup", iso->cgroup ? iso->cgroup : "none", "no_new_privs",
                     iso->no_new_privs, "caps_dropped", iso->caps_dropped);
}

json_t *pr_sbx_result_json(const sbx_result *r)
{
    json_t *iso = pr_isolation_json(&r->isolation);
    json_t *violation = r->violation[0] ? json_pack("{s:s}", "syscall", r->violation) : json_null();
    json_t *sig = r->signal ? json_integer(r->signal) : json_null();
    if (!iso || !violation || !sig) {
        json_decref(iso);
        json_decref(violation);
        json_decref(sig);
        return NULL;
    }
    json_t *o =
        json_pack("{s:s, s:i, s:o, s:I, s:I, s:I, s:o, s:o}", "verdict",
                  sbx_verdict_name(r->verdict), "exit_code", r->exit_code, "signal", sig, "cpu_ms",
                  (json_int_t)r->cpu_ms, "wall_ms", (json_int_t)r->wall_ms, "max_rss_kb",
                  (json_int_t)r->max_rss_kb, "violation", violation, "isolation", iso);
    if (o && r->message[0] && json_object_set_new(o, "message", json_string(r->message)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}
