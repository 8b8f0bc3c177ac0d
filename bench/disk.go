package bench

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
)

// What a row of the data set takes on disk: pg_total_relation_size (heap,
// free space map, visibility map and indexes) over the rows, measured with
// seed 1 at 100,000 rows on PostgreSQL 15, the indexes built after the
// load (at 2,000,000 rows the same within 2%).
const (
	todoRowBytes    = 148 // app.todos, and bench.todos_copy
	chatRowBytes    = 180 // app.chats, and bench.chats_copy
	noteRowBytes    = 194 // app.notes
	productRowBytes = 138 // app.products, and bench.products_copy
	shareRowBytes   = 171 // iam.app_todos_shares
	// storeRowBytes: app.stores, measured on its 1,000 stores (a store per
	// ProductsOfStore products), mostly the indexes' first pages: more
	// than a store takes in a bigger table, and 1% of the products' rows.
	storeRowBytes = 295
	// titleBytes is an allowance for the longer titles and bodies of large
	// tables ('todo 12345678': the number grows with the row count), one
	// more alignment unit a row.
	titleBytes = 8
	// fixedBytes: the users, groups and memberships (8 MB at every size),
	// and the catalog.
	fixedBytes = 16 << 20
	// sortRowBytes: the largest index built after the load (todos'
	// (owner_id, id), 41 bytes a row; notes' (org_id, owner_id, id), 50;
	// products' (store_id, id) is 32) is sorted in temporary files about
	// its size.
	todoSortRowBytes = 41
	noteSortRowBytes = 50

	// DiskMargin: a build needs this many times the estimate free.
	DiskMargin = 1.2
)

// DiskEstimate is what building a data set takes on disk.
type DiskEstimate struct {
	Tables int64 // the tables and their indexes, built
	Build  int64 // more while building: the sort of the largest index, and WAL (max_wal_size)
}

// Total is what the build takes at its peak.
func (d DiskEstimate) Total() int64 { return d.Tables + d.Build }

// Need is what must be free: DiskMargin times Total.
func (d DiskEstimate) Need() int64 { return int64(DiskMargin * float64(d.Total())) }

// EstimateDisk estimates the disk a data set of size takes, walBytes being
// the server's max_wal_size.
func EstimateDisk(size Size, walBytes int64) DiskEstimate {
	rows, other := int64(size.Rows), int64(size.Other())
	shares := rows/RowShareEvery + min(SharesOfUser, rows)
	tables := rows*(todoRowBytes+titleBytes) + // app.todos
		other*(todoRowBytes+titleBytes) + // bench.todos_copy
		2*other*(chatRowBytes+titleBytes) + // app.chats, bench.chats_copy
		other*(noteRowBytes+titleBytes) + // app.notes
		2*other*(productRowBytes+titleBytes) + // app.products, bench.products_copy
		int64(numStores(int(other)))*storeRowBytes + // app.stores
		shares*shareRowBytes + fixedBytes
	return DiskEstimate{Tables: tables, Build: max(rows*todoSortRowBytes, other*noteSortRowBytes) + walBytes}
}

// rebuiltTables are the tables a build empties or drops (before it loads
// anything): their space is free again for the new data set.
var rebuiltTables = []string{
	"app.todos", "app.chats", "app.notes", "app.products", "app.stores",
	"bench.todos_copy", "bench.chats_copy", "bench.products_copy", "bench.users", "bench.meta",
	"iam.app_todos_shares", "iam.invitations", "iam.group_members", "iam.groups",
}

// checkDisk prints the estimate of the data set's size on disk and, when
// the server runs on this machine, refuses to build when the file system
// of its data directory has less than DiskMargin times it free (counting
// the space of the data set the build replaces).
func checkDisk(ctx context.Context, su *pgx.Conn, size Size, log io.Writer) error {
	var dataDir string
	var local bool
	var wal, reclaim int64
	err := su.QueryRow(ctx, `select current_setting('data_directory'),
  coalesce(host(inet_server_addr()) in ('127.0.0.1', '::1'), true),
  pg_size_bytes(current_setting('max_wal_size')),
  (select coalesce(sum(pg_total_relation_size(to_regclass(t))), 0)::bigint from unnest($1::text[]) t)`, rebuiltTables).
		Scan(&dataDir, &local, &wal, &reclaim)
	if err != nil {
		return fmt.Errorf("reading the data directory and max_wal_size: %w", err)
	}
	est := EstimateDisk(size, wal)
	fmt.Fprintf(log, "disk: the data set of %s takes about %s (tables and indexes), and %s more while it is built (the sort of the largest index; WAL up to max_wal_size): %s\n",
		size, humanBytes(est.Tables), humanBytes(est.Build), humanBytes(est.Total()))
	if !local {
		fmt.Fprintln(log, "disk: free space not checked: the server is not on this machine")
		return nil
	}
	free, err := freeBytes(dataDir)
	if err != nil {
		fmt.Fprintf(log, "disk: free space not checked: %v\n", err)
		return nil
	}
	verdict, err := diskVerdict(est, free, reclaim, dataDir)
	if err != nil {
		return err
	}
	fmt.Fprintln(log, "disk: "+verdict)
	return nil
}

// diskVerdict says whether free bytes (and reclaim bytes of the data set
// the build replaces) are enough for est: a line to print, or an error.
func diskVerdict(est DiskEstimate, free, reclaim int64, dataDir string) (string, error) {
	have := fmt.Sprintf("%s has %s free", dataDir, humanBytes(free))
	if reclaim > 0 {
		have += fmt.Sprintf(" (and %s in the data set the build replaces)", humanBytes(reclaim))
	}
	if free+reclaim < est.Need() {
		return "", fmt.Errorf("not enough disk for the data set: it takes about %s while it is built, and a build needs %.1f times that free (%s); the file system of the data directory %s",
			humanBytes(est.Total()), DiskMargin, humanBytes(est.Need()), have)
	}
	return fmt.Sprintf("%s; the build needs %.1f x %s = %s: enough", have, DiskMargin, humanBytes(est.Total()), humanBytes(est.Need())), nil
}

// humanBytes writes n as "16.7 GiB", "512.0 MiB".
func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}
