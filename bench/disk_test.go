package bench

import (
	"strings"
	"testing"
)

func TestEstimateDisk(t *testing.T) {
	const wal = 1 << 30
	cases := []struct {
		name        string
		size        Size
		tables, tmp int64
	}{
		{"1M rows", Size{Rows: 1000000}, 1000000*(156+156+2*188+202+2*146) + 10000*295 + (20000+10000)*171 + 16<<20, 1000000*50 + wal},
		{"100M todos, 1M of the others", Size{Rows: 100000000, OtherRows: 1000000},
			100000000*156 + 1000000*(156+2*188+202+2*146) + 10000*295 + (2000000+10000)*171 + 16<<20, 100000000*41 + wal},
		{"a small data set has fewer shares of the user with shares", Size{Rows: 5000}, 5000*(156+156+2*188+202+2*146) + 50*295 + (100+5000)*171 + 16<<20, 5000*50 + wal},
		{"other rows above rows are rows", Size{Rows: 1000, OtherRows: 5000}, 1000*(156+156+2*188+202+2*146) + 10*295 + (20+1000)*171 + 16<<20, 1000*50 + wal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := EstimateDisk(c.size, wal)
			if got.Tables != c.tables || got.Build != c.tmp {
				t.Errorf("EstimateDisk = %+v, want tables %d, build %d", got, c.tables, c.tmp)
			}
			if got.Total() != c.tables+c.tmp || got.Need() != int64(1.2*float64(c.tables+c.tmp)) {
				t.Errorf("total %d, need %d", got.Total(), got.Need())
			}
		})
	}
	// What make bench-100m needs (the README says so).
	est := EstimateDisk(Size{Rows: 100000000, OtherRows: 1000000}, wal)
	t.Logf("100M todos, 1M others: %s tables and indexes, %s while building, needs %s free",
		humanBytes(est.Tables), humanBytes(est.Build), humanBytes(est.Need()))
}

func TestDiskVerdict(t *testing.T) {
	est := DiskEstimate{Tables: 10 << 30, Build: 2 << 30} // 12 GiB; needs 14.4
	ok, err := diskVerdict(est, 15<<30, 0, "/data")
	if err != nil || !strings.Contains(ok, "/data has 15.0 GiB free; the build needs 1.2 x 12.0 GiB = 14.4 GiB: enough") {
		t.Errorf("15 GiB free: %q, %v", ok, err)
	}
	_, err = diskVerdict(est, 14<<30, 0, "/data")
	if err == nil || !strings.Contains(err.Error(), "needs 1.2 times that free (14.4 GiB); the file system of the data directory /data has 14.0 GiB free") {
		t.Errorf("14 GiB free: %v, want a refusal naming the estimate and the free space", err)
	}
	// The data set the build replaces counts: its tables are emptied first.
	ok, err = diskVerdict(est, 14<<30, 1<<30, "/data")
	if err != nil || !strings.Contains(ok, "(and 1.0 GiB in the data set the build replaces)") {
		t.Errorf("14 GiB free and 1 GiB to replace: %q, %v", ok, err)
	}
}
