package pgserver

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// VersionNum returns the server's server_version_num (150018 for 15.18).
// Tests of behaviour that differs between PostgreSQL majors branch on it
// (`make test-matrix` runs them on each supported major).
func (s *Server) VersionNum(ctx context.Context) (int, error) {
	conn, err := pgconn.Connect(ctx, s.URL("postgres", "postgres"))
	if err != nil {
		return 0, fmt.Errorf("pgserver: connect to read the server version: %w", err)
	}
	defer conn.Close(context.Background())
	res := conn.ExecParams(ctx, "select current_setting('server_version_num')", nil, nil, nil, nil).Read()
	if res.Err != nil {
		return 0, fmt.Errorf("pgserver: reading server_version_num: %w", res.Err)
	}
	if len(res.Rows) != 1 || len(res.Rows[0]) != 1 {
		return 0, fmt.Errorf("pgserver: reading server_version_num: got %d rows", len(res.Rows))
	}
	var n int
	if _, err := fmt.Sscanf(string(res.Rows[0][0]), "%d", &n); err != nil {
		return 0, fmt.Errorf("pgserver: server_version_num %q: %w", res.Rows[0][0], err)
	}
	return n, nil
}
