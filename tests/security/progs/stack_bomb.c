/* Unbounded recursion with large frames: must die on the stack limit (RE by SIGSEGV) or the
 * memory limit (MLE), never take the host with it. */
#include <stdio.h>
#include <string.h>

static long depth;

static long recurse(long n)
{
    volatile char frame[16384];
    memset((char *)frame, (int)(n & 0xff), sizeof frame);
    depth = n;
    if (n == -1) /* never: keeps compilers from calling this an infinite recursion */
        return 0;
    return recurse(n + 1) + frame[n % sizeof frame];
}

int main(void)
{
    return (int)recurse(0);
}
