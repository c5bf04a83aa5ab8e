#ifndef PROCTOR_RUNNER_CLI_H
#define PROCTOR_RUNNER_CLI_H
/* Sub-commands of the proctor binary. Each returns the process exit status:
 * 0 success, 1 the job ended in an error report (grade), 2 usage or configuration error. */

int pr_cli_grade(int argc, char **argv);     /* runner/cli_grade.c */
int pr_cli_sandbox(int argc, char **argv);   /* runner/cli_sandbox.c */
int pr_cli_serve(int argc, char **argv);     /* runner/cli_serve.c */
int pr_cli_challenge(int argc, char **argv); /* runner/cli_challenge.c */
int pr_cli_report(int argc, char **argv);    /* runner/cli_report.c */

/* The dispatcher exported by libproctor-cli.so; argv[0] is the sub-command name. */
int pr_cli_run(int argc, char **argv); /* runner/cli_dispatch.c */

#endif
