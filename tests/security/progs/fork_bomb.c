/* Classic fork bomb: every process forks forever. Must be contained by the process limit and
 * end by a limit; no process may survive the run. */
#include <unistd.h>

int main(void)
{
    for (;;)
        (void)fork();
}
