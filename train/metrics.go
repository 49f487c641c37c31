package train

import (
	"fmt"
	"math"
)

// LogMeanExp returns log((1/n) Σ exp(v_i)), computed stably around the maximum.
func LogMeanExp(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	m := math.Inf(-1)
	for _, x := range v {
		m = math.Max(m, x)
	}
	if math.IsInf(m, -1) {
		return m
	}
	s := 0.0
	for _, x := range v {
		s += math.Exp(x - m)
	}
	return m + math.Log(s/float64(len(v)))
}

// LogZEstimates summarises log importance weights log w_i = log R(x_i) + log p_B(τ_i|x_i)
// − log p_F(τ_i) of on-policy trajectories:
//
//	ELBO    = mean_i log w_i            (log Ẑ, a lower bound on log Z)
//	IW      = logmeanexp_i log w_i      (log Ẑ^RW, a lower bound in expectation, tighter)
//
// and, when the true log Z is known, Δ = log Z − ELBO and Δ^RW = log Z − IW.
type LogZEstimates struct {
	ELBO, IW     float64
	Delta, DelRW float64 // NaN when log Z is unknown
}

// EstimateLogZ computes the estimates from log weights; logZ may be NaN.
func EstimateLogZ(logW []float64, logZ float64) LogZEstimates {
	mean := 0.0
	for _, v := range logW {
		mean += v
	}
	mean /= float64(len(logW))
	iw := LogMeanExp(logW)
	return LogZEstimates{ELBO: mean, IW: iw, Delta: logZ - mean, DelRW: logZ - iw}
}

// W2 is the 2-Wasserstein distance between two equal-size empirical distributions with
// uniform weights: sqrt( min_π (1/n) Σ_i ‖x_i − y_π(i)‖² ) over permutations π, found
// exactly by the Hungarian algorithm (O(n³); n = 2000 takes seconds).
func W2(xs, ys [][]float64) (float64, error) {
	n := len(xs)
	if n == 0 || len(ys) != n {
		return 0, fmt.Errorf("train: W2 needs two non-empty sample sets of equal size, got %d and %d", len(xs), len(ys))
	}
	cost := make([][]float64, n)
	for i := range cost {
		cost[i] = make([]float64, n)
		for j := range cost[i] {
			s := 0.0
			for k := range xs[i] {
				d := xs[i][k] - ys[j][k]
				s += d * d
			}
			cost[i][j] = s
		}
	}
	perm := assignment(cost)
	total := 0.0
	for i, j := range perm {
		total += cost[i][j]
	}
	return math.Sqrt(total / float64(n)), nil
}

// assignment solves min Σ_i c[i][p(i)] over permutations p with the shortest-augmenting-
// path Hungarian method: rows are added one at a time, dual potentials u (rows) and v
// (columns) keep reduced costs c − u − v ≥ 0, and a Dijkstra-like sweep over columns
// finds the cheapest augmenting path for the new row.
func assignment(c [][]float64) []int {
	n := len(c)
	inf := math.Inf(1)
	u := make([]float64, n+1)
	v := make([]float64, n+1)
	match := make([]int, n+1) // match[j] = row assigned to column j (1-based; 0 = none)
	way := make([]int, n+1)
	minv := make([]float64, n+1)
	used := make([]bool, n+1)
	for i := 1; i <= n; i++ {
		match[0] = i
		j0 := 0
		for j := range minv {
			minv[j] = inf
			used[j] = false
		}
		for {
			used[j0] = true
			i0, delta, j1 := match[j0], inf, 0
			for j := 1; j <= n; j++ {
				if used[j] {
					continue
				}
				cur := c[i0-1][j-1] - u[i0] - v[j]
				if cur < minv[j] {
					minv[j], way[j] = cur, j0
				}
				if minv[j] < delta {
					delta, j1 = minv[j], j
				}
			}
			for j := 0; j <= n; j++ {
				if used[j] {
					u[match[j]] += delta
					v[j] -= delta
				} else {
					minv[j] -= delta
				}
			}
			j0 = j1
			if match[j0] == 0 {
				break
			}
		}
		for j0 != 0 {
			j1 := way[j0]
			match[j0] = match[j1]
			j0 = j1
		}
	}
	perm := make([]int, n)
	for j := 1; j <= n; j++ {
		perm[match[j]-1] = j - 1
	}
	return perm
}
