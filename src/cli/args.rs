//! The CLI's arguments (clap derive) and how each set becomes the engine's settings.

use std::path::PathBuf;

use clap::Args;
use darts_pt::data::DatasetName;
use darts_pt::device::Backend;
use darts_pt::genotype::Nb201Arch;
use darts_pt::kernels::Kernels;
use darts_pt::network::{Architecture, RunGenotype};
use darts_pt::run::SearchSettings;
use darts_pt::search::Method;
use darts_pt::select::{Criterion, EdgeOrder, EvalMode, NoneRule, PtSettings, TopologyMode};
use darts_pt::space::SpaceName;
use darts_pt::supernet::SupernetConfig;
use darts_pt::train::{TrainPreset, TrainSettings};

/// Which flags were typed on the command line (clap's value sources): with `--config FILE`, a
/// flag overrides the file only when it was typed (a flag's default never does).
#[derive(Clone, Copy, Debug)]
pub struct Given<'a>(pub Option<&'a clap::ArgMatches>);

impl Given<'_> {
    /// Whether the argument `id` (its field name) was typed on the command line.
    pub fn typed(&self, id: &str) -> bool {
        self.0.is_some_and(|m| {
            let known = m.try_get_raw(id).is_ok();
            debug_assert!(known, "no argument `{id}` in this subcommand");
            known && m.value_source(id) == Some(clap::parser::ValueSource::CommandLine)
        })
    }
}

/// A `--config` file: its path and TOML table.
pub struct ConfigFile {
    pub path: PathBuf,
    pub table: toml::Table,
}

impl ConfigFile {
    pub fn read(path: &Option<PathBuf>) -> anyhow::Result<Option<ConfigFile>> {
        Ok(match path {
            Some(p) => Some(ConfigFile {
                path: p.clone(),
                table: darts_pt::config::read_table(p)?,
            }),
            None => None,
        })
    }

    /// Take the string key `key` out of the table, parsed.
    fn take_parsed<T: std::str::FromStr<Err = darts_pt::Error>>(
        &mut self,
        key: &str,
    ) -> anyhow::Result<Option<T>> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(v)) => Ok(Some(v.parse().map_err(|e: darts_pt::Error| {
                anyhow::anyhow!("{}: `{key}`: {e}", self.path.display())
            })?)),
            Some(other) => anyhow::bail!(
                "{}: `{key}` must be a string, found {}",
                self.path.display(),
                other.type_str()
            ),
        }
    }

    /// Take the table `key` out of the table.
    pub fn take_table(&mut self, key: &str) -> anyhow::Result<Option<toml::Table>> {
        match self.table.remove(key) {
            None => Ok(None),
            Some(toml::Value::Table(t)) => Ok(Some(t)),
            Some(other) => anyhow::bail!(
                "{}: `{key}` must be a table, found {}",
                self.path.display(),
                other.type_str()
            ),
        }
    }
}

/// `--device` and `--kernels`, shared by every command that computes on a device of its own
/// choosing (`search`, `run`, `import`, `train`, `evaluate`, `bench`).
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Compute device: cpu (Burn's flex backend) or wgpu (Vulkan, Metal, DX12; `bench` also
    /// checks its logits against flex).
    #[arg(long, default_value = "cpu", value_parser = parse_backend)]
    pub device: Backend,
    #[command(flatten)]
    pub kernels: KernelArgs,
}

/// `--out`, `--resume` and `--quiet`, shared by the commands that write a run directory
/// (`search`, `run`, `import`, `train`).
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Run directory to write [default: runs/SPACE-DATASET-sSEED; for `train`
    /// runs/train-DATASET-sSEED].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint (its own settings win).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// No progress bars; one log line per epoch.
    #[arg(long)]
    pub quiet: bool,
}

impl OutputArgs {
    /// The run directory and whether to resume it: `--resume DIR`, else `--out DIR`, else
    /// `runs/<default_name>`.
    pub fn run_dir(&self, default_name: &str) -> (PathBuf, bool) {
        match (&self.resume, &self.out) {
            (Some(dir), _) => (dir.clone(), true),
            (None, Some(dir)) => (dir.clone(), false),
            (None, None) => (PathBuf::from("runs").join(default_name), false),
        }
    }
}

/// `--kernels`, shared by every command that computes: with `--device` ([`DeviceArgs`]), or on
/// the device a run directory names (`select`, `score`, `info --device`).
#[derive(Args, Debug, Clone)]
pub struct KernelArgs {
    /// Hot-op implementation: fused (the darts-pt-kernels ops: CPU kernels on flex; on wgpu, GPU
    /// kernels for the mixed-op sum, affine-free BatchNorm and ReLU) or plain (Burn's tensor-op
    /// compositions everywhere, for bisecting).
    #[arg(long, default_value = "fused", value_parser = parse_enum::<Kernels>)]
    pub kernels: Kernels,
    /// The wgpu adapter for `--device wgpu` (or a wgpu run): its number in `darts-pt devices`
    /// or part of its name [default: a discrete GPU, else an integrated one, else a CPU
    /// rasteriser such as lavapipe].
    #[arg(long)]
    pub adapter: Option<String>,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// Search space: darts, darts8, nb201, s1, s2, s3, s4.
    #[arg(long, default_value = "nb201", value_parser = parse_space)]
    pub space: SpaceName,
    /// Dataset: digits (embedded), cifar10, cifar100, fashion-mnist, mnist, svhn, imagenet16-120.
    #[arg(long, default_value = "digits", value_parser = parse_dataset)]
    pub dataset: DatasetName,
    /// Directory of the dataset's files (fashion-mnist defaults to /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// α training: darts, sdarts-rs, sdarts-adv, blank (fixed α).
    #[arg(long, default_value = "darts", value_parser = parse_method)]
    pub method: Method,
    /// Second-order DARTS α gradient (spec §2.4).
    #[arg(long)]
    pub second_order: bool,
    /// Epochs [default: 100 for nb201, 50 otherwise, as the reference].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size of both halves [default: 64].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Run seed.
    #[arg(long, default_value_t = 2)]
    pub seed: u64,
    /// Use only the first N training images (before the 50/50 split).
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Initial channels C [default: 16].
    #[arg(long)]
    pub init_channels: Option<usize>,
    /// Cells (DARTS-like; default 8) or cells per stage (NB201; default 5).
    #[arg(long)]
    pub layers: Option<usize>,
    /// Size the embedded digits are upsampled to (8, 16 or 32) [default: 16].
    #[arg(long)]
    pub digits_size: Option<usize>,
    /// Turn off random crop and flip.
    #[arg(long)]
    pub no_augment: bool,
    /// Cutout during search, probability ramped 0 → --cutout-prob over the epochs.
    #[arg(long)]
    pub cutout: bool,
    /// Cutout square side in pixels.
    #[arg(long, default_value_t = 16)]
    pub cutout_length: usize,
    /// Final cutout probability.
    #[arg(long, default_value_t = 1.0)]
    pub cutout_prob: f64,
    /// Weight learning rate at epoch 0 (cosine-annealed) [default: 0.025].
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Floor of the cosine learning-rate schedule [default: 0.001].
    #[arg(long)]
    pub learning_rate_min: Option<f64>,
    /// SGD momentum of the weights [default: 0.9].
    #[arg(long)]
    pub momentum: Option<f64>,
    /// SGD weight decay of the weights [default: 3e-4].
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Adam learning rate of α [default: 3e-4].
    #[arg(long)]
    pub arch_learning_rate: Option<f64>,
    /// Adam weight decay of α [default: 1e-3].
    #[arg(long)]
    pub arch_weight_decay: Option<f64>,
    /// Clip of the weights' global gradient norm [default: 5].
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Share of the training images in the weight half; the rest trains α [default: 0.5].
    #[arg(long)]
    pub train_portion: Option<f64>,
    /// SDARTS perturbation bound ε_max [default: 0.3].
    #[arg(long)]
    pub epsilon_alpha: Option<f64>,
    /// Settings file (a run's config.toml, or any part of one): its values replace the defaults,
    /// and a flag replaces a value of the file only when it is typed. For `run`, a `[pt]` table
    /// holds the selection's settings (as pt/settings.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub compute: DeviceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl SearchArgs {
    /// Settings: the reference's (or the `--config` file laid over them), then the quick preset
    /// (`quick`), then every flag that applies: all of them without a file, the typed ones with
    /// one. Also returns the file's `[pt]` table, if any.
    pub fn settings(
        &self,
        quick: bool,
        given: Given,
    ) -> anyhow::Result<(SearchSettings, Option<ConfigFile>)> {
        let mut file = ConfigFile::read(&self.config)?;
        let take = |id: &str| self.config.is_none() || given.typed(id);
        let mut pt = None;
        let mut s = match &mut file {
            None => SearchSettings::reference(self.space, self.dataset),
            Some(f) => {
                let space = f.take_parsed::<SpaceName>("space")?;
                let dataset = f.take_parsed::<DatasetName>("dataset")?;
                let space = if take("space") {
                    self.space
                } else {
                    space.unwrap_or(self.space)
                };
                let dataset = if take("dataset") {
                    self.dataset
                } else {
                    dataset.unwrap_or(self.dataset)
                };
                pt = f.take_table("pt")?.map(|table| ConfigFile {
                    path: f.path.clone(),
                    table,
                });
                let base = SearchSettings::reference(space, dataset);
                darts_pt::config::merge_over(&base, &f.table, &f.path)?
            }
        };
        if quick {
            s.apply_quick_preset();
        }
        if take("data_dir") {
            s.data_dir = self.data_dir.clone();
        }
        if take("method") {
            s.method = self.method;
        }
        if take("second_order") {
            s.second_order = self.second_order;
        }
        if take("seed") {
            s.seed = self.seed;
        }
        if take("device") {
            s.device = self.compute.device;
        }
        if take("no_augment") {
            s.augment = !self.no_augment;
        }
        if take("cutout") {
            s.cutout = self.cutout;
        }
        if take("cutout_length") {
            s.cutout_length = self.cutout_length;
        }
        if take("cutout_prob") {
            s.cutout_prob = self.cutout_prob;
        }
        let set = |dst: &mut usize, v: Option<usize>| {
            if let Some(v) = v {
                *dst = v;
            }
        };
        set(&mut s.epochs, self.epochs);
        set(&mut s.batch_size, self.batch_size);
        set(&mut s.init_channels, self.init_channels);
        set(&mut s.layers, self.layers);
        set(&mut s.digits_size, self.digits_size);
        if self.limit_train.is_some() {
            s.limit_train = self.limit_train;
        }
        let h = &mut s.hyper;
        for (dst, v) in [
            (&mut h.learning_rate, self.learning_rate),
            (&mut h.learning_rate_min, self.learning_rate_min),
            (&mut h.momentum, self.momentum),
            (&mut h.weight_decay, self.weight_decay),
            (&mut h.arch_learning_rate, self.arch_learning_rate),
            (&mut h.arch_weight_decay, self.arch_weight_decay),
            (&mut h.grad_clip, self.grad_clip),
            (&mut h.epsilon_alpha, self.epsilon_alpha),
            (&mut s.train_portion, self.train_portion),
        ] {
            if let Some(v) = v {
                *dst = v;
            }
        }
        Ok((s, pt))
    }
}

/// Settings presets of `darts-pt run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// The paper's protocol (spec §2.2, §3.4, §3.5): full-size supernet; for GPUs.
    Paper,
    /// A CPU-sized run that finishes in minutes on 2 cores: small supernet, few epochs, a subset,
    /// one tuning epoch between decisions.
    Quick,
}

/// PT selection flags.
#[derive(Args, Debug, Clone)]
pub struct PtArgs {
    /// Scoring criterion of every decision: acc (keep the op whose removal lowers accuracy
    /// most) or loss [default: acc]; --crit-normal, --crit-reduce and --crit-edge override it.
    #[arg(long, value_parser = parse_enum::<Criterion>)]
    pub crit: Option<Criterion>,
    /// Criterion of the op decisions on normal cells (NB201: every cell).
    #[arg(long, value_parser = parse_enum::<Criterion>)]
    pub crit_normal: Option<Criterion>,
    /// Criterion of the op decisions on reduction cells.
    #[arg(long, value_parser = parse_enum::<Criterion>)]
    pub crit_reduce: Option<Criterion>,
    /// Criterion of the topology decisions (which two edges a node keeps).
    #[arg(long, value_parser = parse_enum::<Criterion>)]
    pub crit_edge: Option<Criterion>,
    /// Order of undecided edges: random (from the run seed, as the reference) or fixed.
    #[arg(long, default_value = "random", value_parser = parse_enum::<EdgeOrder>)]
    pub edge_order: EdgeOrder,
    /// Evaluation: reference (augmented images, random order) or deterministic.
    #[arg(long, default_value = "reference", value_parser = parse_enum::<EvalMode>)]
    pub eval: EvalMode,
    /// Score on the first N validation images only [default: the whole validation half].
    #[arg(long)]
    pub eval_limit: Option<usize>,
    /// Tuning epochs between decisions [default: 5; the quick preset: 1]; 0 = no tuning.
    #[arg(long)]
    pub proj_intv: Option<usize>,
    /// Constant weight learning rate while tuning [default: the search's learning rate / 10].
    #[arg(long)]
    pub tune_lr: Option<f64>,
    /// Topology loop: reference (earlier removals not re-zeroed, spec §3.3) or corrected.
    #[arg(long, default_value = "reference", value_parser = parse_enum::<TopologyMode>)]
    pub topology: TopologyMode,
    /// DARTS genotype of an edge where PT kept `none`: reference (shown as its first other op,
    /// spec §3.6) or keep (shown as 'none').
    #[arg(long, default_value = "reference", value_parser = parse_enum::<NoneRule>)]
    pub none_genotype: NoneRule,
}

impl PtArgs {
    /// Settings: the reference's for `search` (tuning at its learning rate / 10), the quick
    /// preset's changes (`quick`), a `--config` file's values (`file`) and then the flags that
    /// apply: all of them without a file, the typed ones with one.
    pub fn settings(
        &self,
        quick: bool,
        search: &SearchSettings,
        file: Option<&ConfigFile>,
        given: Given,
    ) -> anyhow::Result<PtSettings> {
        let take = |id: &str| file.is_none() || given.typed(id);
        let mut p = PtSettings {
            tune_lr: search.hyper.learning_rate / 10.0,
            ..PtSettings::default()
        };
        if quick {
            p.proj_intv = 1;
            if search.space != SpaceName::Nb201 {
                // 240 evaluations in DARTS-like spaces: score on 256 validation images.
                p.eval_limit = Some(256);
            }
        }
        if let Some(f) = file {
            let mut table = f.table.clone();
            PtSettings::expand_crit(&mut table);
            p = darts_pt::config::merge_over(&p, &table, &f.path)?;
        }
        if let Some(c) = self.crit {
            p.set_crit(c);
        }
        for (dst, v) in [
            (&mut p.crit_normal, self.crit_normal),
            (&mut p.crit_reduce, self.crit_reduce),
            (&mut p.crit_edge, self.crit_edge),
        ] {
            if let Some(v) = v {
                *dst = v;
            }
        }
        if take("edge_order") {
            p.edge_order = self.edge_order;
        }
        if take("eval") {
            p.eval = self.eval;
        }
        if take("topology") {
            p.topology = self.topology;
        }
        if take("none_genotype") {
            p.none_genotype = self.none_genotype;
        }
        if self.eval_limit.is_some() {
            p.eval_limit = self.eval_limit;
        }
        if let Some(v) = self.proj_intv {
            p.proj_intv = v;
        }
        if let Some(v) = self.tune_lr {
            p.tune_lr = v;
        }
        Ok(p)
    }
}

#[derive(Args, Debug)]
pub struct SelectArgs {
    /// Run directory of a finished search.
    #[arg(long)]
    pub run: PathBuf,
    /// Selection: pt, magnitude or both.
    #[arg(long, default_value = "both")]
    pub method: SelectMethod,
    #[command(flatten)]
    pub pt: PtArgs,
    /// Continue an interrupted PT selection from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    #[command(flatten)]
    pub kernels: KernelArgs,
    /// Discard an earlier PT selection of this run and select again.
    #[arg(long)]
    pub force: bool,
    /// PT settings file (a run's pt/settings.toml, any part of one, or a config file with a
    /// `[pt]` table): its values replace the defaults, and a flag replaces a value of the file
    /// only when it is typed.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SelectMethod {
    /// Perturbation-based selection with progressive tuning.
    Pt,
    /// Argmax α.
    Magnitude,
    /// Both.
    Both,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub search: SearchArgs,
    #[command(flatten)]
    pub pt: PtArgs,
    /// Settings preset: paper (the reference protocol) or quick (CPU-sized: C = 8, 1 cell per
    /// stage for nb201 or 5 cells, 10 or 5 epochs, the first 2,000 or 1,000 training images,
    /// batch 32, --proj-intv 1, and --eval-limit 256 outside nb201). Flags given explicitly
    /// override the preset.
    #[arg(long, default_value = "paper")]
    pub preset: Preset,
}

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// NAS-Bench-201 cell, e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'.
    pub arch: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DevicesArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct DrawArgs {
    /// What to draw: a genotype (DARTS `Genotype(...)` text or a NAS-Bench-201 string), a file
    /// holding one (`genotype_pt.txt`), or a run directory (its magnitude and PT cells side by
    /// side, where they differ in orange; DOT draws its PT cell, else its magnitude cell).
    pub what: String,
    /// png, svg or dot; by default the extension of --output, else dot.
    #[arg(long)]
    pub format: Option<String>,
    /// The file to write (atomically); without it DOT and SVG go to standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// The reference's checkpoint: `checkpoint_50.pth.tar` / `.pt` as darts-pt's
    /// train_search.py saves it, or a safetensors file with the same names (α under `arch.*`).
    #[arg(long)]
    pub from_darts_pt: PathBuf,
    /// Space, dataset (PT scores on its validation half), size knobs and --out as for `search`;
    /// the defaults are the paper's supernet sizes.
    #[command(flatten)]
    pub search: SearchArgs,
}

#[derive(Args, Debug)]
pub struct ScoreArgs {
    /// Run directory (its final search checkpoint is scored).
    #[arg(long)]
    pub run: PathBuf,
    /// Safetensors file with `x` (f32 [n, c, h, w], normalised) and `y` (int64 [n]).
    #[arg(long)]
    pub batch: PathBuf,
    /// BatchNorm: train (batch statistics, as PT scores) or eval (running statistics).
    #[arg(long, default_value = "train")]
    pub bn: BnArg,
    #[command(flatten)]
    pub kernels: KernelArgs,
    /// Print JSON: logits, loss, accuracy, masked_ops, masked_edges.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BnArg {
    /// Batch statistics (running estimates untouched).
    Train,
    /// Running statistics.
    Eval,
}

#[derive(Args, Debug)]
pub struct TableArgs {
    /// nb201_accuracy.csv (index, arch_string, cifar10_test, cifar100_test, imagenet16_test).
    #[arg(long)]
    pub csv: PathBuf,
    /// Output file (src/data/nb201_accuracy.bin.gz).
    #[arg(long)]
    pub out: PathBuf,
}

/// Size knobs shared by every command that builds a supernet. Defaults are the paper's.
#[derive(Args, Debug, Clone)]
pub struct SupernetArgs {
    /// Search space: darts (7 ops), darts8 (8 ops), nb201, s1, s2, s3, s4.
    #[arg(long, default_value = "darts", value_parser = parse_space)]
    pub space: SpaceName,
    /// Number of classes.
    #[arg(long, default_value_t = 10)]
    pub classes: usize,
    /// Initial channels C [default: 16; evaluation networks: 36 for DARTS, 16 for NB201].
    #[arg(long)]
    pub init_channels: Option<usize>,
    /// Cells (DARTS-like spaces; default 8, evaluation networks 20) or cells per stage (NB201;
    /// default 5).
    #[arg(long)]
    pub layers: Option<usize>,
    /// Input image channels (3 for RGB, 1 for grey).
    #[arg(long, default_value_t = 3)]
    pub in_channels: usize,
    /// Input height = width in pixels.
    #[arg(long, default_value_t = 32)]
    pub input_size: usize,
}

impl SupernetArgs {
    pub fn config(&self) -> SupernetConfig {
        let paper = SupernetConfig::paper(self.space);
        SupernetConfig {
            space: self.space,
            init_channels: self.init_channels.unwrap_or(paper.init_channels),
            layers: self.layers.unwrap_or(paper.layers),
            num_classes: self.classes,
            in_channels: self.in_channels,
            input_size: self.input_size,
        }
    }
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    pub net: SupernetArgs,
    /// Describe the evaluation network of this DARTS genotype instead (`Genotype(...)` text, a
    /// file holding it, or a search run directory): defaults C=36, 20 cells, auxiliary head.
    #[arg(long, conflicts_with = "arch_string")]
    pub genotype: Option<String>,
    /// Describe the NAS-Bench-201 network of this cell instead (defaults C=16, N=5).
    #[arg(long)]
    pub arch_string: Option<String>,
    /// With --genotype / --arch-string: no auxiliary head.
    #[arg(long)]
    pub no_auxiliary: bool,
    /// Print JSON with the keys `params`, `alpha_elements`, `alpha_shapes`, `op_names`.
    #[arg(long)]
    pub json: bool,
    /// Also build the supernet on this device (cpu or wgpu) and time one forward pass of a batch of 2.
    #[arg(long, value_parser = parse_backend)]
    pub device: Option<Backend>,
    #[command(flatten)]
    pub kernels: KernelArgs,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Search space: nb201 or darts (the 7-op s5 space), the two the reference bench times; any
    /// other space name is accepted too.
    #[arg(long, default_value = "nb201", value_parser = parse_space)]
    pub space: SpaceName,
    /// Initial channels C.
    #[arg(long, default_value_t = 16)]
    pub init_channels: usize,
    /// Cells per stage (nb201) or cells (DARTS-like) [default: 5 for nb201, 8 otherwise].
    #[arg(long)]
    pub layers: Option<usize>,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Input height = width in pixels (3 channels, 10 classes).
    #[arg(long, default_value_t = 32)]
    pub input_size: usize,
    /// Batches one PT candidate scores.
    #[arg(long, default_value_t = 10)]
    pub eval_batches: usize,
    /// Untimed calls before the timed ones, per figure.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Timed calls per figure (min and median are reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    #[command(flatten)]
    pub compute: DeviceArgs,
    /// Seed of the supernet and of the random inputs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print only one JSON object on stdout: the figures, `config`, `device`, `threads` and
    /// `gflop_forward` as reference_bench.py writes them, plus `adapter`, `kernels` and, on wgpu,
    /// `check_vs_cpu_max_rel`.
    #[arg(long)]
    pub json: bool,
}

pub fn parse_space(s: &str) -> Result<SpaceName, String> {
    s.parse().map_err(|e: darts_pt::Error| e.to_string())
}

pub fn parse_dataset(s: &str) -> Result<DatasetName, String> {
    s.parse().map_err(|e: darts_pt::Error| e.to_string())
}

pub fn parse_method(s: &str) -> Result<Method, String> {
    s.parse().map_err(|e: darts_pt::Error| e.to_string())
}

pub fn parse_enum<T: std::str::FromStr<Err = darts_pt::Error>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: darts_pt::Error| e.to_string())
}

pub fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse().map_err(|e: darts_pt::Error| e.to_string())
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// The DARTS genotype: `Genotype(...)` text, a file holding it, or a search run directory
    /// (its PT genotype; see --which). A NAS-Bench-201 string is accepted too.
    #[arg(long, required_unless_present_any = ["arch_string", "resume", "config"])]
    pub genotype: Option<String>,
    /// A NAS-Bench-201 cell, e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'.
    #[arg(long, conflicts_with = "genotype")]
    pub arch_string: Option<String>,
    /// Which genotype of a search run directory: pt or magnitude.
    #[arg(long, default_value = "pt", value_parser = parse_enum::<RunGenotype>)]
    pub which: RunGenotype,
    /// Settings preset: paper (spec §4.1: C=36, 20 cells, auxiliary, cutout, 600 epochs; NB201
    /// C=16, N=5, 200 epochs), robust (RobustDARTS' CIFAR-100/SVHN protocol: C=16, 8 cells),
    /// nb201 (NAS-Bench-201's protocol: lr 0.1 with Nesterov, weight decay 5e-4, batch 256, 200
    /// epochs, no clip) or quick (CPU-sized: C=16, 5 cells or N=1, 10 epochs, batch 64, first
    /// 5,000 images).
    #[arg(long, default_value = "paper", value_parser = parse_enum::<TrainPreset>)]
    pub preset: TrainPreset,
    /// Dataset: digits (embedded), cifar10, cifar100, fashion-mnist, mnist, svhn, imagenet16-120.
    #[arg(long, default_value = "cifar10", value_parser = parse_dataset)]
    pub dataset: DatasetName,
    /// Directory of the dataset's files.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Epochs [default: the preset's].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Batch size [default: 96].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed.
    #[arg(long, default_value_t = 2)]
    pub seed: u64,
    /// Initial channels C [default: the preset's].
    #[arg(long)]
    pub init_channels: Option<usize>,
    /// Cells (DARTS) or cells per stage (NB201) [default: the preset's].
    #[arg(long)]
    pub layers: Option<usize>,
    /// No auxiliary head.
    #[arg(long)]
    pub no_auxiliary: bool,
    /// Weight of the auxiliary loss.
    #[arg(long, default_value_t = 0.4)]
    pub auxiliary_weight: f64,
    /// Final drop-path probability [default: 0.2 for DARTS, 0 for NB201].
    #[arg(long)]
    pub drop_path_prob: Option<f64>,
    /// No cutout.
    #[arg(long)]
    pub no_cutout: bool,
    /// Cutout square side in pixels.
    #[arg(long, default_value_t = 16)]
    pub cutout_length: usize,
    /// Initial learning rate [default: 0.025; the nb201 preset: 0.1].
    #[arg(long)]
    pub learning_rate: Option<f64>,
    /// Train on the first N training images only.
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Test on the first N test images only.
    #[arg(long)]
    pub limit_test: Option<usize>,
    /// Size the embedded digits are upsampled to [default: 16].
    #[arg(long)]
    pub digits_size: Option<usize>,
    /// Settings file (a training run's config.toml, or any part of one; its `architecture` is
    /// used unless --genotype or --arch-string is typed): its values replace the defaults, and a
    /// flag replaces a value of the file only when it is typed.
    #[arg(long)]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub compute: DeviceArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

impl TrainArgs {
    /// Settings: the reference's for the architecture and dataset with the preset (or the
    /// `--config` file laid over the reference's), then every flag that applies: all of them
    /// without a file, the typed ones with one.
    pub fn settings(&self, given: Given) -> anyhow::Result<TrainSettings> {
        let mut file = ConfigFile::read(&self.config)?;
        let take = |id: &str| self.config.is_none() || given.typed(id);
        let typed_arch = match (&self.genotype, &self.arch_string) {
            (Some(g), _) => Some(Architecture::resolve(g, self.which)?),
            (None, Some(a)) => Some(a.parse::<Nb201Arch>().map(Architecture::Nb201)?),
            (None, None) => None,
        };
        let mut s = match &mut file {
            None => {
                let Some(arch) = typed_arch else {
                    anyhow::bail!("give --genotype or --arch-string");
                };
                let mut s = TrainSettings::reference(&arch, self.dataset);
                s.apply_preset(self.preset);
                s
            }
            Some(f) => {
                let file_arch = match f.table.remove("architecture") {
                    None => None,
                    Some(toml::Value::String(a)) => {
                        Some(a.parse::<Architecture>().map_err(|e| {
                            anyhow::anyhow!("{}: `architecture`: {e}", f.path.display())
                        })?)
                    }
                    Some(_) => {
                        anyhow::bail!("{}: `architecture` must be a string", f.path.display())
                    }
                };
                let Some(arch) = typed_arch.or(file_arch) else {
                    anyhow::bail!(
                        "{} has no `architecture`; give --genotype or --arch-string",
                        f.path.display()
                    );
                };
                let dataset = f.take_parsed::<DatasetName>("dataset")?;
                let dataset = if take("dataset") {
                    self.dataset
                } else {
                    dataset.unwrap_or(self.dataset)
                };
                let mut base = TrainSettings::reference(&arch, dataset);
                if take("preset") {
                    base.apply_preset(self.preset);
                }
                darts_pt::config::merge_over(&base, &f.table, &f.path)?
            }
        };
        if take("data_dir") {
            s.data_dir = self.data_dir.clone();
        }
        if take("seed") {
            s.seed = self.seed;
        }
        if take("device") {
            s.device = self.compute.device;
        }
        if take("auxiliary_weight") {
            s.auxiliary_weight = self.auxiliary_weight;
        }
        if take("cutout_length") {
            s.cutout_length = self.cutout_length;
        }
        if let Some(v) = self.learning_rate {
            s.learning_rate = v;
        }
        if self.no_auxiliary {
            s.auxiliary = false;
        }
        if self.no_cutout {
            s.cutout = false;
        }
        if let Some(v) = self.epochs {
            s.epochs = v;
        }
        if let Some(v) = self.batch_size {
            s.batch_size = v;
        }
        if let Some(v) = self.init_channels {
            s.init_channels = v;
        }
        if let Some(v) = self.layers {
            s.layers = v;
        }
        if let Some(v) = self.drop_path_prob {
            s.drop_path_prob = v;
        }
        if self.limit_train.is_some() {
            s.limit_train = self.limit_train;
        }
        if self.limit_test.is_some() {
            s.limit_test = self.limit_test;
        }
        if let Some(v) = self.digits_size {
            s.digits_size = v;
        }
        // The auxiliary head only fits 32-pixel inputs; the presets keep it only where it fits.
        if s.auxiliary && self.preset == TrainPreset::Quick && !self.dataset_is_32px() {
            s.auxiliary = false;
        }
        Ok(s)
    }

    fn dataset_is_32px(&self) -> bool {
        match self.dataset {
            DatasetName::Cifar10 | DatasetName::Cifar100 | DatasetName::Svhn => true,
            DatasetName::Digits => self.digits_size == Some(32),
            DatasetName::FashionMnist | DatasetName::Mnist | DatasetName::ImageNet16 => false,
        }
    }
}

#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// Run directory of `darts-pt train`.
    #[arg(long)]
    pub run: PathBuf,
    #[command(flatten)]
    pub compute: DeviceArgs,
    /// Print JSON: architecture, epoch, test_loss, test_acc, test_images.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "gui")]
#[derive(Args, Debug)]
pub struct GuiArgs {
    /// A run directory to open at start.
    #[arg(long, conflicts_with = "start")]
    pub run: Option<PathBuf>,
    /// Start the default run (quick preset, NAS-Bench-201 on the embedded digits) into this
    /// directory right away.
    #[arg(long)]
    pub start: Option<PathBuf>,
}
