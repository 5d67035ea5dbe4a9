//! The `mmusim` command: parses arguments, calls the library crates, prints.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use mmusim_trace::{Format, OutputFormat, TraceSpec, Workload};

#[derive(Parser, Debug)]
#[command(name = "mmusim", version, about = "Trace-driven TLB and page-walk simulator")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run traces through the machine a config describes; print a table and write summary.json.
    Run {
        /// The machine: a preset from configs/ or your own TOML file.
        #[arg(long)]
        config: PathBuf,
        #[command(flatten)]
        workload: WorkloadArgs,
        /// Override a config key, e.g. --set tlb.l2.entries=2048 (repeatable).
        #[arg(long = "set", value_parser = parse_override)]
        overrides: Vec<(String, String)>,
        /// Directory for summary.json, metrics.csv, histograms.csv and the .hgrm files.
        #[arg(long, default_value = "results/run")]
        out: PathBuf,
    },
    /// Run every configuration of a sweep spec over its workloads, each trace read once for all runs.
    Sweep {
        /// The sweep spec (TOML: configs, traces or [[workload]]s, [set], [axes]); see configs/sweeps/.
        spec: PathBuf,
        /// Output directory [default: results/sweeps/<the spec's name>].
        #[arg(long)]
        out: Option<PathBuf>,
        /// Simulation threads [default: all cores].
        #[arg(long)]
        threads: Option<usize>,
        /// Run only shard I of N (0 <= I < N) [default: from SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT].
        #[arg(long, value_parser = parse_shard)]
        shard: Option<mmusim_report::sweep::Shard>,
        /// Print the runs and workloads the spec expands to, and stop.
        #[arg(long)]
        dry_run: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Simulate every configuration on its own, even where one pass could answer several
        /// (runs differing only in one LRU TLB's ways); the results are the same.
        #[arg(long)]
        separate: bool,
    },
    /// Merge the output directories of a sharded sweep, checking that every run is there exactly once.
    Merge {
        /// Where the merged sweep goes.
        out: PathBuf,
        /// The shards' output directories.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
    },
    /// Compare metrics with a baseline: exit 0 when all hold, 1 on a regression, 2 on bad input.
    Check {
        /// The baseline: a metrics.csv or a directory holding one.
        baseline: PathBuf,
        /// The metrics to check: a metrics.csv or a directory holding one (a sweep's or a run's).
        current: PathBuf,
        /// Per-metric tolerances (TOML: [default] and [metrics] with abs, rel, direction).
        #[arg(long)]
        tolerances: Option<PathBuf>,
        /// Also write every compared cell with its status as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Make CURRENT the new baseline (after showing what changed) and exit 0.
        #[arg(long)]
        bless: bool,
    },
    /// Trace a program with Valgrind's Lackey tool: into a compressed trace (-o), or simulated as it runs (--run).
    #[command(group(clap::ArgGroup::new("into").required(true).args(["output", "run"])))]
    Record {
        /// Where the trace goes (Lackey text; .zst, .gz or .xz compresses it).
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// Simulate the program's references as it runs on this machine config, storing no trace.
        #[arg(long)]
        run: Option<PathBuf>,
        /// Override a config key of --run's config (repeatable).
        #[arg(long = "set", value_parser = parse_override, requires = "run")]
        overrides: Vec<(String, String)>,
        /// Directory for --run's summary.json and tables.
        #[arg(long, default_value = "results/run", requires = "run")]
        out: PathBuf,
        /// The program and its arguments, after `--`.
        #[arg(last = true, required = true)]
        program: Vec<std::ffi::OsString>,
    },
    /// Draw a run's or a sweep's directory: DIR/report/index.html, one SVG per figure, metrics-long.csv.
    Report {
        /// A directory `mmusim run` or `mmusim sweep` (or merge) wrote.
        dir: PathBuf,
    },
    /// Inspect configs.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Inspect and mix traces.
    #[command(subcommand)]
    Trace(TraceCommand),
    /// Convert a trace to mmusim's binary format (or to Lackey text), keeping every record.
    Convert {
        /// The trace to read (any supported format, plain or gzip/xz/zstd).
        input: PathBuf,
        /// Where to write; a .gz, .xz or .zst extension compresses the output.
        output: PathBuf,
        /// Read the input as this format instead of telling it from its content.
        #[arg(long, value_parser = parse_format)]
        format: Option<Format>,
        /// Output format: mmusim or lackey [default: lackey for *.lackey names, else mmusim].
        #[arg(long, value_parser = parse_output_format)]
        to: Option<OutputFormat>,
    },
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Print the fully resolved config: every default and inherited value written out.
    Show {
        file: PathBuf,
        /// Override a config key, e.g. --set tlb.l2.entries=2048 (repeatable).
        #[arg(long = "set", value_parser = parse_override)]
        overrides: Vec<(String, String)>,
    },
}

#[derive(Subcommand, Debug)]
enum TraceCommand {
    /// Format, compression, counts by kind, footprint and address range of each trace.
    Info {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Read every file as this format instead of telling it from its content.
        #[arg(long, value_parser = parse_format)]
        format: Option<Format>,
        /// Print JSON (an array, one object per file) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Interleave several traces round-robin into one multi-programmed trace (mmusim format).
    Mix {
        #[command(flatten)]
        workload: WorkloadArgs,
        /// Where to write the mixed trace (.gz, .xz or .zst compresses it).
        output: PathBuf,
    },
}

/// A workload: traces given one by one, or a workload file.
#[derive(Args, Debug)]
struct WorkloadArgs {
    /// A trace of the workload (`-`: standard input, a pipe or a redirected file); repeat for several, each its own address space.
    #[arg(long = "trace", required_unless_present = "workload", conflicts_with = "workload")]
    traces: Vec<PathBuf>,
    /// Instructions each trace runs before the next one's turn.
    #[arg(long, default_value_t = mmusim_trace::DEFAULT_QUANTUM, conflicts_with = "workload")]
    quantum: u64,
    /// A workload file (TOML: quantum, and [[trace]] tables with path, format, vm).
    #[arg(long)]
    workload: Option<PathBuf>,
}

impl WorkloadArgs {
    fn load(&self) -> Result<Workload, Failure> {
        match &self.workload {
            Some(path) => Workload::load(path).map_err(Failure::Trace),
            None => {
                let workload = Workload::new(self.traces.iter().map(TraceSpec::new).collect(), self.quantum);
                workload.validate().map_err(Failure::Arguments)?;
                Ok(workload)
            }
        }
    }
}

fn parse_override(s: &str) -> Result<(String, String), String> {
    mmusim_report::config_file::parse_override(s)
}

/// `, peak memory 45.1 MiB`, where the system tells it.
fn peak_memory() -> String {
    mmusim_report::run::peak_resident_memory()
        .map_or(String::new(), |bytes| format!(", peak memory {:.1} MiB", bytes as f64 / f64::from(1 << 20)))
}

fn parse_shard(s: &str) -> Result<mmusim_report::sweep::Shard, String> {
    mmusim_report::sweep::Shard::parse(s)
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn parse_output_format(s: &str) -> Result<OutputFormat, String> {
    s.parse()
}

/// Exit status for input the command cannot use (bad trace, config, spec,
/// tolerances or arguments) and for outputs it cannot write.
const BAD_INPUT: u8 = 2;

/// Exit status of a check that found a regression.
const REGRESSED: u8 = 1;

/// Why a command failed: what, and (in the error each carries) which file,
/// key or line. The exit status follows from the kind.
#[derive(Debug)]
enum Failure {
    /// A config file or `--set` override that cannot be used.
    Config(mmusim_report::config_file::ConfigFileError),
    /// A trace or workload file that cannot be read, or a trace that
    /// cannot be written.
    Trace(mmusim_trace::TraceError),
    /// A run that could not finish or write its results.
    Run(mmusim_report::run::RunError),
    /// A sweep spec that cannot be used.
    Plan(mmusim_report::plan::PlanError),
    /// A sweep or merge that could not start or finish.
    Sweep(mmusim_report::sweep::SweepError),
    /// A check whose tables or tolerances cannot be used.
    Check(mmusim_report::check::CheckError),
    /// A directory that cannot be drawn, or a report that cannot be written.
    Report(mmusim_report::pictures::ReportError),
    /// A program that could not be traced.
    Record(mmusim_report::record::RecordError),
    /// Arguments that parse but cannot be used together.
    Arguments(String),
    /// Runs of a sweep that failed, each message naming its run, out of
    /// `jobs`.
    RunsFailed { failed: Vec<String>, jobs: usize },
    /// A file the command writes besides results (check's JSON).
    Write { path: PathBuf, error: std::io::Error },
    /// Standard output went wrong (other than a reader that left).
    Stdout(std::io::Error),
}

impl Failure {
    fn exit_status(&self) -> u8 {
        match self {
            Failure::Config(_)
            | Failure::Trace(_)
            | Failure::Run(_)
            | Failure::Plan(_)
            | Failure::Sweep(_)
            | Failure::Check(_)
            | Failure::Report(_)
            | Failure::Record(_)
            | Failure::Arguments(_)
            | Failure::RunsFailed { .. }
            | Failure::Write { .. }
            | Failure::Stdout(_) => BAD_INPUT,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Config(e) => write!(f, "{e}"),
            Failure::Trace(e) => write!(f, "{e}"),
            Failure::Run(e) => write!(f, "{e}"),
            Failure::Plan(e) => write!(f, "{e}"),
            Failure::Sweep(e) => write!(f, "{e}"),
            Failure::Check(e) => write!(f, "{e}"),
            Failure::Report(e) => write!(f, "{e}"),
            Failure::Record(e) => write!(f, "{e}"),
            Failure::Arguments(why) => f.write_str(why),
            Failure::RunsFailed { failed, jobs } => {
                write!(f, "{} of {jobs} runs failed:", failed.len())?;
                failed.iter().try_for_each(|failure| write!(f, "\n  {failure}"))
            }
            Failure::Write { path, error } => write!(f, "{}: cannot write: {error}", path.display()),
            Failure::Stdout(error) => write!(f, "cannot write to standard output: {error}"),
        }
    }
}

/// Writes to standard output. A reader that went away (`mmusim ... | head`)
/// ends the program quietly rather than as an error.
fn emit(text: &str) -> Result<(), Failure> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::Stdout(e)),
    }
}

fn main() -> ExitCode {
    mmusim_trace::exit_with_a_message_on_sigbus();
    let cli = Cli::parse();
    if let Some(budget) = std::env::var_os("MMUSIM_MEMORY_BUDGET") {
        match budget.to_string_lossy().parse::<mmusim_translate::size::ByteSize>() {
            Ok(bytes) => mmusim_translate::budget::set_limit(bytes.bytes()),
            Err(why) => {
                #[allow(clippy::print_stderr)]
                {
                    eprintln!("mmusim: MMUSIM_MEMORY_BUDGET: {why}");
                }
                return ExitCode::from(BAD_INPUT);
            }
        }
    }
    match run(cli) {
        Ok(code) => code,
        Err(failure) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("mmusim: {failure}");
            }
            ExitCode::from(failure.exit_status())
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, Failure> {
    match cli.command {
        Command::Sweep { spec, out, threads, shard, dry_run, quiet, separate } => {
            return sweep(&spec, out, threads, shard, dry_run, quiet, separate);
        }
        Command::Merge { out, shards } => {
            let runs = mmusim_report::sweep::merge(&out, &shards).map_err(Failure::Sweep)?;
            emit(&format!("merged {} shards ({runs} runs) into {}\n", shards.len(), out.display()))?;
        }
        Command::Report { dir } => {
            let written = mmusim_report::pictures::write(&dir).map_err(Failure::Report)?;
            let missing = match written.planned_rows - written.rows {
                0 => String::new(),
                n => format!(" ({n} runs of the plan are not in the directory yet)"),
            };
            emit(&format!(
                "wrote {} figures, index.html and metrics-long.csv to {}{missing}\n",
                written.figures,
                written.dir.display()
            ))?;
        }
        Command::Record { output, run, overrides, out, program } => {
            use mmusim_report::record;
            if let Some(output) = output {
                let recorded = record::record_to_file(&program, &output).map_err(Failure::Record)?;
                emit(&format!(
                    "recorded {} references ({} instructions) to {}; the program exited with {}\n",
                    recorded.written.records,
                    recorded.written.instructions,
                    output.display(),
                    recorded.status
                ))?;
            } else if let Some(config) = run {
                let config = mmusim_report::config_file::load(&config, &overrides).map_err(Failure::Config)?;
                let recording = record::Recording::start(&program).map_err(Failure::Record)?;
                let workload = Workload::new(vec![TraceSpec::new(&recording.pipe)], mmusim_trace::DEFAULT_QUANTUM);
                let output = mmusim_report::run::run(&config, &workload);
                let status = recording.finish().map_err(Failure::Record)?;
                let output = output.map_err(Failure::Run)?;
                let dir = mmusim_report::summary::write_summary(&out, &output).map_err(Failure::Run)?;
                emit(&mmusim_report::summary::render(&output))?;
                emit(&format!(
                    "  the program exited with {status}; wrote summary.json, metrics.csv, histograms.csv and .hgrm files to {}\n",
                    dir.display()
                ))?;
            }
        }
        Command::Check { baseline, current, tolerances, json, bless } => {
            return check(&baseline, &current, tolerances.as_deref(), json.as_deref(), bless);
        }
        Command::Run { config, workload, overrides, out } => {
            let config = mmusim_report::config_file::load(&config, &overrides).map_err(Failure::Config)?;
            let workload = workload.load()?;
            let start = std::time::Instant::now();
            let output = mmusim_report::run::run(&config, &workload).map_err(Failure::Run)?;
            let seconds = start.elapsed().as_secs_f64();
            let dir = mmusim_report::summary::write_summary(&out, &output).map_err(Failure::Run)?;
            emit(&mmusim_report::summary::render(&output))?;
            emit(&format!(
                "  {:.2} s ({:.1} M references/s){}\n",
                seconds,
                output.metrics.references as f64 / seconds.max(1e-9) / 1e6,
                peak_memory()
            ))?;
            emit(&format!("  wrote summary.json, metrics.csv, histograms.csv and .hgrm files to {}\n", dir.display()))?;
        }
        Command::Config(ConfigCommand::Show { file, overrides }) => {
            let config = mmusim_report::config_file::load(&file, &overrides).map_err(Failure::Config)?;
            emit(&config.to_toml())?;
        }
        Command::Trace(TraceCommand::Info { files, format, json }) => {
            let mut infos = Vec::with_capacity(files.len());
            for file in &files {
                let reader = mmusim_trace::TraceReader::open_as(file, format).map_err(Failure::Trace)?;
                let info = mmusim_trace::TraceInfo::collect(reader).map_err(Failure::Trace)?;
                if !json {
                    emit(&mmusim_report::trace_info::render(&info))?;
                }
                infos.push(info);
            }
            if json {
                emit(&(serde_json::to_string_pretty(&infos).expect("trace statistics serialise") + "\n"))?;
            }
        }
        Command::Trace(TraceCommand::Mix { workload, output }) => {
            let workload = workload.load()?;
            let mut mix = workload.open().map_err(Failure::Trace)?;
            let names: Vec<String> = workload.traces.iter().map(|t| t.path.display().to_string()).collect();
            let description = format!(
                "mixed by mmusim {} from {} with a quantum of {} instructions",
                env!("CARGO_PKG_VERSION"),
                names.join(", "),
                workload.quantum
            );
            let written = mmusim_trace::write_trace(&mut mix, &output, OutputFormat::Mmusim, &description)
                .map_err(Failure::Trace)?;
            emit(&format!(
                "{}: {} references, {} instructions\n",
                output.display(),
                written.records,
                written.instructions
            ))?;
        }
        Command::Convert { input, output, format, to } => {
            let to = to.unwrap_or_else(|| OutputFormat::from_path(&output));
            let summary = mmusim_trace::convert(&input, format, &output, to).map_err(Failure::Trace)?;
            emit(&format!(
                "{} ({}, {}) -> {} ({}, {}): {} references, {} instructions\n",
                input.display(),
                summary.input_format,
                summary.input_compression.name(),
                output.display(),
                summary.written.output_format.name(),
                summary.written.output_compression.name(),
                summary.written.records,
                summary.written.instructions
            ))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn sweep(
    spec: &std::path::Path,
    out: Option<PathBuf>,
    threads: Option<usize>,
    shard: Option<mmusim_report::sweep::Shard>,
    dry_run: bool,
    quiet: bool,
    separate: bool,
) -> Result<ExitCode, Failure> {
    let plan = mmusim_report::plan::load(spec).map_err(Failure::Plan)?;
    if dry_run {
        emit(&mmusim_report::sweep::render_plan(&plan))?;
        return Ok(ExitCode::SUCCESS);
    }
    let shard = match shard {
        Some(shard) => Some(shard),
        None => mmusim_report::sweep::Shard::from_slurm(|name| std::env::var(name).ok()).map_err(Failure::Arguments)?,
    };
    if threads == Some(0) {
        return Err(Failure::Arguments("--threads: give at least 1".into()));
    }
    let out = out.unwrap_or_else(|| PathBuf::from("results/sweeps").join(&plan.name));
    let options =
        mmusim_report::sweep::Options { out: out.clone(), threads, shard, progress: !quiet, one_pass: !separate };
    let outcome = mmusim_report::sweep::execute(&plan, &options).map_err(Failure::Sweep)?;
    emit(&mmusim_report::sweep::render(&plan, &options, &outcome))?;
    emit(&format!("  {} threads{}\n", rayon_threads(threads), peak_memory()))?;
    if outcome.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::RunsFailed { failed: outcome.failures, jobs: outcome.jobs })
    }
}

/// The simulation threads a sweep uses.
fn rayon_threads(threads: Option<usize>) -> usize {
    threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn check(
    baseline: &std::path::Path,
    current: &std::path::Path,
    tolerances: Option<&std::path::Path>,
    json: Option<&std::path::Path>,
    bless: bool,
) -> Result<ExitCode, Failure> {
    use mmusim_report::check;
    let tolerances = match tolerances {
        Some(path) => check::Tolerances::load(path).map_err(Failure::Check)?,
        None => check::Tolerances::default(),
    };
    let current_table = check::read_table(current).map_err(Failure::Check)?;
    let baseline_exists = baseline.exists();
    if baseline_exists || !bless {
        let baseline_table = check::read_table(baseline).map_err(Failure::Check)?;
        let report = check::check(&baseline_table, &current_table, &tolerances);
        emit(&check::render(&report, baseline_table.rows.len()))?;
        if let Some(path) = json {
            mmusim_trace::write_atomically(path, report.to_json().as_bytes())
                .map_err(|error| Failure::Write { path: path.to_owned(), error })?;
        }
        if !bless {
            return Ok(if report.failed() { ExitCode::from(REGRESSED) } else { ExitCode::SUCCESS });
        }
    }
    let written = check::bless(baseline, &current_table).map_err(Failure::Check)?;
    emit(&format!("blessed: {} is the new baseline\n", written.display()))?;
    Ok(ExitCode::SUCCESS)
}
