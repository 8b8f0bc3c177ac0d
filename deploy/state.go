package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// snapshotFormat is the version of the snapshot stored in iam.applied; a
// record of another format is not used for drift detection.
const snapshotFormat = 1

// stateTable is created by the first apply. One row per apply that changed
// something (or found no usable record): what was installed, from what,
// and the catalog state it left, which later plans compare with to tell
// drift (a change made outside iamc) from a change of the files.
const stateTable = `create table if not exists iam.applied (
    id bigint generated always as identity primary key,
    applied_at timestamptz not null default now(),
    applied_by text not null default session_user,
    iamc_version text not null,
    runtime_version integer not null,
    server_version integer not null,
    source_hash text not null,
    script_hash text not null,
    sources text[] not null,
    resources jsonb not null,
    scope jsonb not null,
    snapshot jsonb not null
)`

const stateComment = `comment on table iam.applied is 'What iamc apply installed, one row per apply that changed something: the iamc and runtime versions, hashes of the .iam files and of the script, the resources, and the catalog state it left (iamc plan compares with it to report drift). Nobody but the owner role reads it.'`

// Resource is a table iamc manages.
type Resource struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	Name   string `json:"name"` // schema.table as PostgreSQL quotes it
}

// Record is the last row of iam.applied.
type Record struct {
	ID             int64
	AppliedAt      time.Time
	AppliedBy      string
	IamcVersion    string
	RuntimeVersion int
	ServerVersion  int
	SourceHash     string
	ScriptHash     string
	Sources        []string
	Resources      []Resource
	scope          recordedScope // what the snapshot covers besides the resources
	Snapshot       Snapshot
	format         int
}

type storedSnapshot struct {
	Format  int      `json:"format"`
	Objects []Object `json:"objects"`
}

type storedName struct {
	Schema string `json:"schema"`
	Name   string `json:"name"`
}

// recordedScope is the part of a snapshot's scope that is not the
// resources: the functions, views and indexes the build created, and the
// schemas whose grants it read.
type recordedScope struct {
	Functions []storedName `json:"functions"`
	Views     []storedName `json:"views"`
	Indexes   []storedName `json:"indexes"`
	Schemas   []string     `json:"schemas"`
	Tables    []storedName `json:"tables,omitempty"` // share tables
}

func stored(qs []qualifiedName) []storedName {
	out := make([]storedName, len(qs))
	for i, q := range qs {
		out[i] = storedName{q.schema, q.name}
	}
	return out
}

func unstored(ns []storedName) []qualifiedName {
	out := make([]qualifiedName, len(ns))
	for i, n := range ns {
		out[i] = qualifiedName{n.Schema, n.Name}
	}
	return out
}

// loadRecord reads the last row of iam.applied, or nil when there is none.
func loadRecord(ctx context.Context, tx pgx.Tx) (*Record, error) {
	var exists bool
	if err := tx.QueryRow(ctx, `select to_regclass('iam.applied') is not null`).Scan(&exists); err != nil {
		return nil, fmt.Errorf("reading iam.applied: %w", err)
	}
	if !exists {
		return nil, nil
	}
	var (
		r                        Record
		resources, idx, snapshot []byte
	)
	err := tx.QueryRow(ctx, `select id, applied_at, applied_by, iamc_version, runtime_version, server_version,
	        source_hash, script_hash, sources, resources, scope, snapshot
	    from iam.applied order by id desc limit 1`).Scan(&r.ID, &r.AppliedAt, &r.AppliedBy, &r.IamcVersion, &r.RuntimeVersion,
		&r.ServerVersion, &r.SourceHash, &r.ScriptHash, &r.Sources, &resources, &idx, &snapshot)
	if err == pgx.ErrNoRows {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading iam.applied: %w", err)
	}
	if err := json.Unmarshal(resources, &r.Resources); err != nil {
		return nil, fmt.Errorf("reading iam.applied #%d: %w", r.ID, err)
	}
	if err := json.Unmarshal(idx, &r.scope); err != nil {
		return nil, fmt.Errorf("reading iam.applied #%d: %w", r.ID, err)
	}
	var s storedSnapshot
	if err := json.Unmarshal(snapshot, &s); err != nil {
		return nil, fmt.Errorf("reading iam.applied #%d: %w", r.ID, err)
	}
	r.format = s.Format
	r.Snapshot = Snapshot{}
	for _, o := range s.Objects {
		r.Snapshot[o.Key()] = o
	}
	return &r, nil
}

// usable says whether drift can be measured against the record: it was
// written in this snapshot format, by the same PostgreSQL major version
// (whose pg_get_* output it holds).
func (r *Record) usable(serverVersion int) bool {
	return r != nil && r.format == snapshotFormat && r.ServerVersion/10000 == serverVersion/10000
}

// recorded returns an object of the record, if there is one.
func (r *Record) recorded(key string) (Object, bool) {
	if r == nil {
		return Object{}, false
	}
	o, ok := r.Snapshot[key]
	return o, ok
}

// writeRecord creates iam.applied if needed and appends a row.
func writeRecord(ctx context.Context, tx pgx.Tx, r *Record, snap Snapshot) (int64, error) {
	for _, sql := range []string{stateTable, stateComment, `revoke all on table iam.applied from public`} {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return 0, fmt.Errorf("creating iam.applied: %w", err)
		}
	}
	stored, err := json.Marshal(storedSnapshot{Format: snapshotFormat, Objects: snap.Sorted()})
	if err != nil {
		return 0, err
	}
	resources, err := json.Marshal(r.Resources)
	if err != nil {
		return 0, err
	}
	idx, err := json.Marshal(r.scope)
	if err != nil {
		return 0, err
	}
	var id int64
	err = tx.QueryRow(ctx, `insert into iam.applied (iamc_version, runtime_version, server_version, source_hash, script_hash, sources, resources, scope, snapshot)
	    values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id`,
		r.IamcVersion, r.RuntimeVersion, r.ServerVersion, r.SourceHash, r.ScriptHash, r.Sources, resources, idx, stored).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("recording the apply in iam.applied: %w", err)
	}
	return id, nil
}

// hashSources hashes the .iam files by base name and content, so the hash
// does not depend on where the directory is.
func hashSources(paths []string) (string, error) {
	sorted := append([]string(nil), paths...)
	sort.Slice(sorted, func(i, j int) bool { return filepath.Base(sorted[i]) < filepath.Base(sorted[j]) })
	h := sha256.New()
	for _, p := range sorted {
		b, err := os.ReadFile(p)
		if err != nil {
			return "", fmt.Errorf("hashing the sources: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(p), len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashText(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
