package train

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
)

// Save writes a checkpoint: every parameter, the Adam moments, log Z and the iteration
// count, with the configuration in the metadata. The file is replaced atomically, and a
// parameter holding NaN or Inf is an error (naming it) that leaves the previous
// checkpoint in place. Noise is counter-based (seed, iteration), so the iteration count
// is all the RNG state there is: a resumed run draws exactly the noise the uninterrupted
// one would have.
func (t *Trainer) Save(path string, target string) error { return t.SaveWith(path, target, nil) }

// SaveWith is Save with extra metadata (e.g. the prior and constraint of a posterior
// target, so that the reward can be rebuilt from the checkpoint); extra keys may not
// replace the trainer's own.
func (t *Trainer) SaveWith(path string, target string, extra map[string]string) error {
	// Reading parameters waits for the submitted iterations; the scalars still in the
	// readback ring stay there for Step or Flush to report.
	ps := append(t.Net.Params(), t.Net.LogZ)
	ts, err := nn.Snapshot(ps)
	if err != nil {
		return fmt.Errorf("train: not saving iteration %d: %w", t.iter, err)
	}
	for _, m := range t.moment {
		v, err := m.Read()
		if err != nil {
			return err
		}
		ts = append(ts, nn.NamedTensor{Name: m.Label(), Shape: []int{m.Len()}, Data: v})
	}
	for _, b := range t.buffers() {
		v, err := b.buf.z.Read()
		if err != nil {
			return err
		}
		lr, err := b.buf.logR.Read()
		if err != nil {
			return err
		}
		ts = append(ts, nn.NamedTensor{Name: b.name + ".buffer", Shape: append([]int(nil), b.buf.z.Shape...), Data: v},
			nn.NamedTensor{Name: b.name + ".logr", Shape: []int{len(lr)}, Data: lr})
	}
	if p := t.opt.Prior; p != nil {
		// Relative TB: the frozen prior travels with the checkpoint, so that resuming
		// and sampling need nothing else.
		pts, err := nn.Snapshot(p.Params())
		if err != nil {
			return fmt.Errorf("train: not saving iteration %d: prior sampler: %w", t.iter, err)
		}
		for _, x := range pts {
			x.Name = rtbPriorPrefix + x.Name
			ts = append(ts, x)
		}
	}
	cfg, err := json.Marshal(t.Cfg)
	if err != nil {
		return err
	}
	md := map[string]string{
		"format": "osds-sampler-checkpoint-1", "config": string(cfg), "target": target,
		"iteration": strconv.Itoa(t.iter), "dim": strconv.Itoa(t.Net.Dim),
	}
	for _, b := range t.buffers() {
		md[b.name+"_inserted"] = strconv.Itoa(b.buf.inserted)
	}
	for k, v := range extra {
		if _, own := md[k]; own {
			return fmt.Errorf("train: checkpoint metadata key %q is reserved", k)
		}
		md[k] = v
	}
	if t.ls != nil {
		md["ls_eta"] = strconv.FormatFloat(t.ls.eta, 'g', -1, 64)
		md["ls_calls"] = strconv.Itoa(t.ls.calls)
	}
	return nn.WriteSafetensors(path, ts, md)
}

// namedBuffer is a replay buffer with the prefix of its tensors and count in checkpoints.
type namedBuffer struct {
	name string
	buf  *replayBuffer
}

// buffers lists the trainer's replay buffers: "replay" (forward states) and, with local
// search, "ls" (its chains' states).
func (t *Trainer) buffers() []namedBuffer {
	var out []namedBuffer
	if t.buffer != nil {
		out = append(out, namedBuffer{"replay", t.buffer})
	}
	if t.ls != nil {
		out = append(out, namedBuffer{"ls", t.ls.buf})
	}
	return out
}

// rtbPriorPrefix names the frozen prior's parameters in a relative-TB checkpoint.
const rtbPriorPrefix = "rtb.prior."

// RTBPrior rebuilds the frozen prior sampler a relative-TB checkpoint carries (its
// network has the checkpoint's dimension, width and harmonics, no Langevin drift and no
// conditions). Release it after the trainer built with it.
func (c *Checkpoint) RTBPrior(d *gpu.Device) (*Network, error) {
	if c.Cfg.Objective != kernels.RTB {
		return nil, fmt.Errorf("train: the checkpoint was trained with %v, not relative TB: it has no prior sampler", c.Cfg.Objective)
	}
	net, err := NewNetwork(d, c.Dim, c.Cfg.Width, c.Cfg.Harmonics, rand.New(rand.NewPCG(0, 0)), false)
	if err != nil {
		return nil, err
	}
	var ts []nn.NamedTensor
	for _, x := range c.tensors {
		if name, ok := strings.CutPrefix(x.Name, rtbPriorPrefix); ok {
			x.Name = name
			ts = append(ts, x)
		}
	}
	if err := nn.Restore(net.Params(), ts); err != nil {
		net.Release()
		return nil, fmt.Errorf("train: the checkpoint's relative-TB prior sampler: %w", err)
	}
	return net, nil
}

// Sampler rebuilds the checkpoint's own network (drift, log Z, condition embedding) with
// its trained parameters, without a trainer: e.g. the prior sampler that relative TB
// fine-tunes (`osds train --rtb-from`). Release it when done.
func (c *Checkpoint) Sampler(d *gpu.Device) (*Network, error) {
	net, err := NewNetworkFor(d, c.Dim, c.Cfg)
	if err != nil {
		return nil, err
	}
	if err := nn.Restore(append(net.Params(), net.LogZ), c.tensors); err != nil {
		net.Release()
		return nil, err
	}
	return net, nil
}

// Checkpoint is what LoadCheckpoint reads before a trainer exists.
type Checkpoint struct {
	Cfg    Config
	Target string
	Dim    int
	Iter   int
	// Meta is the file's whole metadata (including what SaveWith added).
	Meta    map[string]string
	tensors []nn.NamedTensor
}

// LoadCheckpoint reads and validates a checkpoint written by Save.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	ts, md, err := nn.ReadSafetensors(path)
	if err != nil {
		return nil, err
	}
	if md["format"] != "osds-sampler-checkpoint-1" {
		return nil, fmt.Errorf("train: %s is not an osds sampler checkpoint (metadata format %q)", path, md["format"])
	}
	c := &Checkpoint{Target: md["target"], tensors: ts, Meta: md}
	if err := json.Unmarshal([]byte(md["config"]), &c.Cfg); err != nil {
		return nil, fmt.Errorf("train: %s: bad config in metadata: %w", path, err)
	}
	if c.Iter, err = strconv.Atoi(md["iteration"]); err != nil {
		return nil, fmt.Errorf("train: %s: bad iteration %q", path, md["iteration"])
	}
	if c.Dim, err = strconv.Atoi(md["dim"]); err != nil {
		return nil, fmt.Errorf("train: %s: bad dimension %q", path, md["dim"])
	}
	// A run that diverged, or a damaged file, must not load and sample blobs. Log R of
	// replay-buffer states may legitimately be -Inf (a reward of zero).
	for _, x := range ts {
		if strings.HasSuffix(x.Name, ".logr") {
			continue
		}
		for i, v := range x.Data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return nil, fmt.Errorf("train: %s: tensor %q holds %v at element %d of %d: the checkpoint is not usable (a diverged run or a damaged file)", path, x.Name, v, i, len(x.Data))
			}
		}
	}
	return c, nil
}

// Restore loads the checkpoint's parameters, moments and iteration into t, which must
// have been built with the checkpoint's configuration.
func (t *Trainer) Restore(c *Checkpoint) (err error) {
	if c.Dim != t.Net.Dim {
		return fmt.Errorf("train: checkpoint has dimension %d, trainer %d", c.Dim, t.Net.Dim)
	}
	if err := nn.Restore(append(t.Net.Params(), t.Net.LogZ), c.tensors); err != nil {
		return err
	}
	byName := map[string]nn.NamedTensor{}
	for _, x := range c.tensors {
		byName[x.Name] = x
	}
	for _, m := range t.moment {
		x, ok := byName[m.Label()]
		if !ok {
			return fmt.Errorf("train: checkpoint lacks optimizer state %q", m.Label())
		}
		if err := m.Write(x.Data); err != nil {
			return err
		}
	}
	for _, b := range t.buffers() {
		x, ok := byName[b.name+".buffer"]
		if !ok {
			if b.name == "ls" { // written before local search had its own buffer: start it empty
				continue
			}
			return fmt.Errorf("train: checkpoint lacks the replay buffer")
		}
		if err := b.buf.z.Write(x.Data); err != nil {
			return err
		}
		// Checkpoints from before the buffer kept log R lack it; only ranking needs it.
		if lr, ok := byName[b.name+".logr"]; ok {
			if err := b.buf.logR.Write(lr.Data); err != nil {
				return err
			}
		} else if t.Cfg.Rank {
			return fmt.Errorf("train: checkpoint lacks the %s buffer's log R, which rank-prioritised replay needs", b.name)
		}
		if b.buf.inserted, err = strconv.Atoi(c.Meta[b.name+"_inserted"]); err != nil {
			return fmt.Errorf("train: checkpoint: bad %s buffer count %q", b.name, c.Meta[b.name+"_inserted"])
		}
	}
	if t.ls != nil {
		if t.ls.eta, err = strconv.ParseFloat(c.Meta["ls_eta"], 64); err != nil {
			return fmt.Errorf("train: checkpoint: bad local-search step size %q", c.Meta["ls_eta"])
		}
		if t.ls.calls, err = strconv.Atoi(c.Meta["ls_calls"]); err != nil {
			return fmt.Errorf("train: checkpoint: bad local-search count %q", c.Meta["ls_calls"])
		}
	}
	t.iter = c.Iter
	return nil
}

// TargetReward returns the reward builder of a named synthetic target (a name NewTarget
// takes: a WGSL target's file is read here, once, and compiled with the first reward
// built; an unreadable or invalid one makes every reward fail with the reason).
func TargetReward(name string) RewardFunc {
	if spec, ok := isWGSLTarget(name); ok {
		t, err := NewWGSLTarget(spec)
		if err != nil {
			return func(*kernels.Library, *kernels.Tensor, *kernels.Tensor, *kernels.Tensor) (*Reward, error) {
				return nil, err
			}
		}
		return t.Reward()
	}
	return func(l *kernels.Library, logr, grad, z *kernels.Tensor) (*Reward, error) {
		return OpReward(l.LogReward(logr, grad, z, kernels.TargetKind(name)))
	}
}
