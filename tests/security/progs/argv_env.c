/* Prints argc, the total size of argv, and every environment variable name: the host
 * environment must have been scrubbed. */
#include <stdio.h>
#include <string.h>

extern char **environ;

int main(int argc, char **argv)
{
    size_t total = 0;
    int i;
    for (i = 0; i < argc; i++)
        total += strlen(argv[i]) + 1;
    printf("argc=%d argbytes=%zu\n", argc, total);
    for (i = 0; environ[i]; i++) {
        const char *eq = strchr(environ[i], '=');
        printf("env %.*s (%zu bytes)\n", eq ? (int)(eq - environ[i]) : 20, environ[i],
               strlen(environ[i]));
    }
    return 0;
}
