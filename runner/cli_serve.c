#include "cli.h"

#include <stdio.h>

/* Placeholder until this sub-command lands. */
int pr_cli_serve(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "proctor serve: not built yet\n");
    return 2;
}
