/* PostgreSQL engine of the sql kind (placeholder until the engine lands). */
#include "sql_kind.h"

int pr_sql_grade_pg(pr_grading *g, const sql_state *s, const pr_sql_pgconn *conn, pr_error *err)
{
    (void)g;
    (void)s;
    (void)conn;
    return pr_error_set(err, PR_EINTERNAL, "sql: the PostgreSQL engine is not built yet");
}
