package maas

import (
	"fmt"
	"iter"

	commonv1 "github.com/maas-project/maas/clients/go/gen/maas/common/v1"
	discriminativev1 "github.com/maas-project/maas/clients/go/gen/maas/discriminative/v1"
)

// Ref names a model version (version 0 = the latest).
func Ref(name string, version int64) *commonv1.ModelRef {
	return &commonv1.ModelRef{Name: name, Version: version}
}

// NewMatrix packs rows (all of one length) into a row-major Matrix.
func NewMatrix(rows [][]float64) (*commonv1.Matrix, error) {
	m := &commonv1.Matrix{Rows: uint32(len(rows))}
	if len(rows) == 0 {
		return m, nil
	}
	m.Cols = uint32(len(rows[0]))
	m.Values = make([]float64, 0, len(rows)*len(rows[0]))
	for i, row := range rows {
		if len(row) != len(rows[0]) {
			return nil, fmt.Errorf("maas: NewMatrix: row %d has %d values, row 0 has %d", i, len(row), len(rows[0]))
		}
		m.Values = append(m.Values, row...)
	}
	return m, nil
}

// checkShape reports a Matrix whose values do not fill rows x cols ("a 3x2 matrix carries 5 values").
func checkShape(m *commonv1.Matrix) error {
	rows, cols := uint64(m.GetRows()), uint64(m.GetCols())
	if uint64(len(m.GetValues())) != rows*cols {
		return fmt.Errorf("a %dx%d matrix carries %d values", rows, cols, len(m.GetValues()))
	}
	return nil
}

// Rows unpacks a row-major Matrix into rows (which share the matrix's storage).
func Rows(m *commonv1.Matrix) ([][]float64, error) {
	if err := checkShape(m); err != nil {
		return nil, fmt.Errorf("maas: Rows: %w", err)
	}
	rows, cols := int(m.GetRows()), int(m.GetCols())
	out := make([][]float64, rows)
	for r := range out {
		out[r] = m.GetValues()[r*cols : (r+1)*cols : (r+1)*cols]
	}
	return out, nil
}

// SplitRows yields m in chunks of at most rowsPerChunk rows (for FitModel); rowsPerChunk < 1 means 1. A matrix
// whose values do not fill rows x cols cannot be split: it is yielded whole, and FitModel refuses it with
// INVALID_ARGUMENT ("a 3x2 matrix carries 5 values"), as Rows does.
func SplitRows(m *commonv1.Matrix, rowsPerChunk int) iter.Seq[*commonv1.Matrix] {
	rowsPerChunk = max(rowsPerChunk, 1)
	return func(yield func(*commonv1.Matrix) bool) {
		if checkShape(m) != nil {
			yield(m)
			return
		}
		rows, cols := int(m.GetRows()), int(m.GetCols())
		for start := 0; start < rows; start += rowsPerChunk {
			n := min(rowsPerChunk, rows-start)
			chunk := &commonv1.Matrix{Rows: uint32(n), Cols: uint32(cols),
				Values: m.GetValues()[start*cols : (start+n)*cols]}
			if !yield(chunk) {
				return
			}
		}
	}
}

// Batches yields examples in TextBatches of at most perBatch examples (for Train and Evaluate);
// perBatch < 1 means 1.
func Batches(examples []*discriminativev1.LabeledText, perBatch int) iter.Seq[*discriminativev1.TextBatch] {
	perBatch = max(perBatch, 1)
	return func(yield func(*discriminativev1.TextBatch) bool) {
		for start := 0; start < len(examples); start += perBatch {
			end := min(start+perBatch, len(examples))
			if !yield(&discriminativev1.TextBatch{Examples: examples[start:end]}) {
				return
			}
		}
	}
}
