package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"osds/gpu"
	"osds/kernels"
	"osds/nn"
	"osds/nn/onnx"
	"osds/priors"
)

func runPrior(args []string) error {
	sub := map[string]func([]string) error{
		"train":  runPriorTrain,
		"sample": runPriorSample,
		"eval":   runPriorEval,
		"list":   runPriorList,
		"export": runPriorExport,
	}
	const usage = "usage: osds prior train|sample|eval|list|export [flags] (train: --kind vae|gan|flow|classifier --data mnist|fashion; sample/eval/export: a shipped model name or a .safetensors file; export NAME|FILE --onnx OUT.onnx); osds prior SUBCOMMAND --help lists its flags"
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprintln(os.Stderr, usage)
		return pflag.ErrHelp
	}
	if len(args) == 0 {
		return errors.New(usage)
	}
	if sub[args[0]] == nil {
		return fmt.Errorf("unknown subcommand %q; %s", args[0], usage)
	}
	return sub[args[0]](args[1:])
}

// openLibrary opens the default adapter's device and a kernel library.
func openLibrary() (*kernels.Library, func(), error) {
	d, err := gpu.NewDevice()
	if err != nil {
		return nil, nil, err
	}
	l := kernels.NewLibrary(d)
	return l, func() { l.Release(); d.Release() }, nil
}

func runPriorTrain(args []string) error {
	fs := pflag.NewFlagSet("prior train", pflag.ContinueOnError)
	kind := fs.String("kind", "vae", "model kind: "+strings.Join(priors.Kinds(), ", "))
	data := fs.String("data", "mnist", "dataset: mnist or fashion")
	epochs := fs.Int("epochs", 0, "passes over the training set (0: the kind's default)")
	batch := fs.Int("batch", 128, "minibatch size")
	lr := fs.Float64("lr", 1e-3, "Adam learning rate")
	seed := fs.Uint64("seed", 1, "random seed (initialisation, shuffling, noise)")
	out := fs.String("out", "out/priors", "folder for the model file, its sample grid and manifest.json")
	name := fs.String("name", "", "model name (default <data>-<kind>)")
	arch := fs.String("arch", "", `architecture JSON, fields left out take the kind's default (e.g. '{"C1":16,"C2":32}')`)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *data != "mnist" && *data != "fashion" {
		return fmt.Errorf("--data %q: want mnist or fashion", *data)
	}
	if *name == "" {
		*name = *data + "-" + *kind
	}
	if *batch < 1 || !(*lr > 0) || *epochs < 0 {
		return fmt.Errorf("--batch %d, --lr %v, --epochs %d: want batch ≥ 1, lr > 0, epochs ≥ 0", *batch, *lr, *epochs)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	trainSet, err := priors.LoadDataset(*data, "train")
	if err != nil {
		return err
	}
	testSet, err := priors.LoadDataset(*data, "test")
	if err != nil {
		return err
	}
	l, closeLib, err := openLibrary()
	if err != nil {
		return err
	}
	defer closeLib()
	file := filepath.Join(*out, *name+".safetensors")
	command := "osds prior " + strings.Join(append([]string{"train"}, args...), " ")
	start := time.Now()
	logf := func(format string, a ...any) {
		fmt.Printf("[%6.0fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, a...))
	}
	k, err := priors.LookupKind(*kind)
	if err != nil {
		return fmt.Errorf("--kind: %w", err)
	}
	if *epochs == 0 {
		*epochs = k.DefaultEpochs
	}
	model, err := k.Build(l.Device(), []byte(*arch), *seed)
	if err != nil {
		return fmt.Errorf("--arch %s for a %s: %w", *arch, *kind, err)
	}
	defer model.Release()
	metrics := map[string]float64{}
	spec := priors.TrainSpec{Train: trainSet, Epochs: *epochs, Batch: *batch, LR: *lr, Seed: *seed, Logf: logf}
	spec.EpochDone = func(epoch int) error {
		if err := saveWithGrid(l, model, file, *out, *name, *data, command); err != nil {
			return err
		}
		m, err := k.Eval(l, model, testSet)
		if err != nil {
			return err
		}
		for key, v := range m {
			metrics[key] = v
		}
		logf("epoch %d: %s; saved %s", epoch, formatMetrics(m), file)
		return nil
	}
	if err := k.Train(l, model, spec); err != nil {
		return err
	}
	metrics["epochs"] = float64(*epochs)
	return recordInManifest(*out, *name, *data, file, model, metrics, command)
}

// formatMetrics prints metrics sorted by name.
func formatMetrics(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.4g", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// saveWithGrid checkpoints model and, for a prior, writes a 8×8 grid of its samples.
func saveWithGrid(l *kernels.Library, m priors.Model, file, dir, name, data, command string) error {
	if err := priors.SaveModel(file, m, map[string]string{priors.MetaDataset: data, "osds.command": command}); err != nil {
		return err
	}
	p, ok := m.(priors.Prior)
	if !ok {
		return nil
	}
	xs, err := priors.Sample(l, p, 64, 7)
	if err != nil {
		return err
	}
	h, w, c := p.Image()
	return priors.WriteGridPNG(filepath.Join(dir, name+"-samples.png"), xs, 64, h, w, c, 8)
}

// recordInManifest puts the model file's entry (digest, architecture, metrics) into
// dir/manifest.json.
func recordInManifest(dir, name, data, file string, m priors.Model, metrics map[string]float64, command string) error {
	raw, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	arch, err := jsonRaw(m.Architecture())
	if err != nil {
		return err
	}
	n := 0
	for _, p := range m.Params() {
		n += p.Len()
	}
	entry := priors.Entry{Name: name, Kind: m.Kind(), Dataset: data, File: filepath.Base(file), SHA256: priors.SHA256Hex(raw), Arch: arch, Params: n, Metrics: metrics, Command: command}
	if err := priors.UpdateManifest(dir, func(man *priors.Manifest) error { man.Put(entry); return nil }); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%d parameters) and its entry in %s\n", file, n, filepath.Join(dir, priors.ManifestName))
	return nil
}

func runPriorSample(args []string) error {
	fs := pflag.NewFlagSet("prior sample", pflag.ContinueOnError)
	n := fs.Int("n", 64, "number of samples")
	cols := fs.Int("cols", 8, "grid columns")
	seed := fs.Uint64("seed", 1, "noise seed")
	out := fs.String("out", "samples.png", "PNG grid to write")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: osds prior sample NAME|FILE [--n 64] [--out samples.png]")
	}
	if *n < 1 || *cols < 1 {
		return fmt.Errorf("--n %d and --cols %d must be ≥ 1", *n, *cols)
	}
	l, closeLib, err := openLibrary()
	if err != nil {
		return err
	}
	defer closeLib()
	m, _, err := priors.LoadNamedOrFile(l.Device(), fs.Arg(0))
	if err != nil {
		return err
	}
	defer m.Release()
	p, ok := m.(priors.Prior)
	if !ok {
		return fmt.Errorf("%s is a %s, not a prior", fs.Arg(0), m.Kind())
	}
	xs, err := priors.Sample(l, p, *n, *seed)
	if err != nil {
		return err
	}
	h, w, c := p.Image()
	if err := priors.WriteGridPNG(*out, xs, *n, h, w, c, *cols); err != nil {
		return err
	}
	fmt.Printf("wrote %s (%d samples of %s)\n", *out, *n, fs.Arg(0))
	return nil
}

func runPriorEval(args []string) error {
	fs := pflag.NewFlagSet("prior eval", pflag.ContinueOnError)
	data := fs.String("data", "", "test set: mnist or fashion (default: the model's dataset)")
	record := fs.String("record", "", "merge the measured metrics into this folder's manifest.json entry of the model (e.g. priors/weights)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: osds prior eval NAME|FILE [--data mnist|fashion]")
	}
	l, closeLib, err := openLibrary()
	if err != nil {
		return err
	}
	defer closeLib()
	m, md, err := priors.LoadNamedOrFile(l.Device(), fs.Arg(0))
	if err != nil {
		return err
	}
	defer m.Release()
	if *data == "" {
		*data = md[priors.MetaDataset]
	}
	ds, err := priors.LoadDataset(*data, "test")
	if err != nil {
		return err
	}
	k, err := priors.LookupKind(m.Kind())
	if err != nil {
		return err
	}
	metrics, err := k.Eval(l, m, ds)
	if err != nil {
		return err
	}
	fmt.Printf("%s (%s) on %s test: %s\n", fs.Arg(0), m.Kind(), *data, formatMetrics(metrics))
	if *record == "" {
		return nil
	}
	name := strings.TrimSuffix(filepath.Base(fs.Arg(0)), ".safetensors")
	err = priors.UpdateManifest(*record, func(man *priors.Manifest) error {
		e, err := man.Find(name)
		if err != nil {
			return fmt.Errorf("--record %s: %w", *record, err)
		}
		if e.Metrics == nil {
			e.Metrics = map[string]float64{}
		}
		for k, v := range metrics {
			e.Metrics[k] = v
		}
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Printf("recorded in %s\n", filepath.Join(*record, priors.ManifestName))
	return nil
}

func runPriorList(args []string) error {
	fs := pflag.NewFlagSet("prior list", pflag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the shipped models as a JSON array")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	man, err := priors.ShippedManifest()
	if err != nil {
		return err
	}
	if *asJSON {
		raw, err := json.MarshalIndent(man.Models, "", "  ")
		if err != nil {
			return err
		}
		fmt.Printf("%s\n", raw)
		return nil
	}
	fmt.Printf("%-18s %-10s %-8s %9s  %s\n", "NAME", "KIND", "DATA", "PARAMS", "METRICS (test set)")
	for _, e := range man.Models {
		keys := make([]string, 0, len(e.Metrics))
		for k := range e.Metrics {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var ms []string
		for _, k := range keys {
			ms = append(ms, fmt.Sprintf("%s %.4g", k, e.Metrics[k]))
		}
		fmt.Printf("%-18s %-10s %-8s %9d  %s\n", e.Name, e.Kind, e.Dataset, e.Params, strings.Join(ms, ", "))
	}
	return nil
}

// jsonRaw marshals v for a manifest field.
func jsonRaw(v any) ([]byte, error) { return json.Marshal(v) }

// runPriorExport writes a shipped model or a model file as ONNX: a prior's generator
// z → x [batch, 1, H, W], a classifier x → log_probs (and logits). The file is read back
// by osds's importer before it is written, so what lands on disk is known to load.
func runPriorExport(args []string) error {
	fs := pflag.NewFlagSet("prior export", pflag.ContinueOnError)
	out := fs.String("onnx", "", "ONNX file to write (OUT.onnx)")
	const usage = "usage: osds prior export NAME|FILE --onnx OUT.onnx"
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(usage)
	}
	if *out == "" {
		return fmt.Errorf("--onnx is required; %s", usage)
	}
	if !strings.EqualFold(filepath.Ext(*out), ".onnx") {
		return fmt.Errorf("--onnx %s: the file name must end in .onnx (osds recognises ONNX priors and constraints by it)", *out)
	}
	ref := fs.Arg(0)
	l, closeLib, err := openLibrary()
	if err != nil {
		return err
	}
	defer closeLib()
	m, md, err := priors.LoadNamedOrFile(l.Device(), ref)
	if err != nil {
		return err
	}
	defer m.Release()
	meta := map[string]string{"osds.source": ref}
	if ds := md[priors.MetaDataset]; ds != "" {
		meta[priors.MetaDataset] = ds
	}
	data, err := priors.MarshalONNX(m, meta)
	if err != nil {
		return err
	}
	om, err := onnx.Parse(data)
	if err != nil {
		return fmt.Errorf("the exported model of %s does not read back (a bug in osds): %w", ref, err)
	}
	if err := nn.WriteFileAtomic(*out, data); err != nil {
		return err
	}
	outs := make([]string, len(om.Outputs))
	for i, o := range om.Outputs {
		outs[i] = o.String()
	}
	fmt.Printf("wrote %s (%.1f MB): %s (%s) as ONNX opset %d, %s → %s\n", *out, float64(len(data))/1e6, ref, m.Kind(), om.Opset, om.Input, strings.Join(outs, ", "))
	return nil
}
