package roadef

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
)

// BestKnown is one row of best_known.csv: published reference values for an
// instance.
type BestKnown struct {
	Set, Instance string
	Machines      int
	Processes     int
	ModelPresent  bool
	OriginalCost  int64
	// BestVerified is the lowest verified published cost (an upper bound on
	// the best known).
	BestVerified int64
	// LowerBound is the best published lower bound (0 if unknown).
	LowerBound int64
}

// ReadBestKnown parses best_known.csv.
func ReadBestKnown(r io.Reader) ([]BestKnown, error) {
	rows, err := csv.NewReader(r).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("best known: %w", err)
	}
	if len(rows) < 1 {
		return nil, fmt.Errorf("best known: empty file")
	}
	col := map[string]int{}
	for i, h := range rows[0] {
		col[h] = i
	}
	for _, need := range []string{"set", "instance", "machines", "processes", "model_file_present", "original_cost", "best_verified", "lb_masson2013"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("best known: column %q missing", need)
		}
	}
	num := func(row []string, name string) (int64, error) {
		v := row[col[name]]
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("best known: %s %s: %w", row[col["instance"]], name, err)
		}
		return n, nil
	}
	var out []BestKnown
	for _, row := range rows[1:] {
		if len(row) != len(rows[0]) {
			return nil, fmt.Errorf("best known: row %q has %d columns, want %d", row, len(row), len(rows[0]))
		}
		b := BestKnown{Set: row[col["set"]], Instance: row[col["instance"]], ModelPresent: row[col["model_file_present"]] == "yes"}
		var m, p int64
		if m, err = num(row, "machines"); err != nil {
			return nil, err
		}
		if p, err = num(row, "processes"); err != nil {
			return nil, err
		}
		b.Machines, b.Processes = int(m), int(p)
		if b.OriginalCost, err = num(row, "original_cost"); err != nil {
			return nil, err
		}
		if b.BestVerified, err = num(row, "best_verified"); err != nil {
			return nil, err
		}
		if b.LowerBound, err = num(row, "lb_masson2013"); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}
