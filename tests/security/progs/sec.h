/* Helpers shared by the hostile test programs of the security battery. These programs run
 * INSIDE the sandbox only; they print one line per attempt so the driver can compare. */
#ifndef PROCTOR_SEC_H
#define PROCTOR_SEC_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* "EPERM" style name of an errno value. */
static inline const char *sec_errname(int e)
{
    const char *n = strerrorname_np(e);
    return n ? n : "E?";
}

/* Prints "<what>: OK" or "<what>: ERR <ENAME>" for a syscall-style return value. */
static inline void sec_report(const char *what, long rc)
{
    int e = errno;
    if (rc < 0)
        printf("%s: ERR %s\n", what, sec_errname(e));
    else
        printf("%s: OK\n", what);
    (void)fflush(stdout);
}

#endif
