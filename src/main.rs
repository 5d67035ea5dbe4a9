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
    /// A trace of the workload; repeat for several, each its own address space.
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
    fn load(&self) -> Result<Workload, String> {
        match &self.workload {
            Some(path) => Workload::load(path).map_err(|e| e.to_string()),
            None => {
                let workload = Workload::new(self.traces.iter().map(TraceSpec::new).collect(), self.quantum);
                workload.validate()?;
                Ok(workload)
            }
        }
    }
}

fn parse_override(s: &str) -> Result<(String, String), String> {
    mmusim_report::config_file::parse_override(s)
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

fn parse_output_format(s: &str) -> Result<OutputFormat, String> {
    s.parse()
}

/// Exit status for input the command cannot use (bad trace, bad arguments).
const BAD_INPUT: u8 = 2;

/// Writes to standard output. A reader that went away (`mmusim ... | head`)
/// ends the program quietly rather than as an error.
fn emit(text: &str) -> Result<(), String> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(format!("cannot write to standard output: {e}")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            #[allow(clippy::print_stderr)]
            {
                eprintln!("mmusim: {message}");
            }
            ExitCode::from(BAD_INPUT)
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Run { config, workload, overrides, out } => {
            let config = mmusim_report::config_file::load(&config, &overrides).map_err(|e| e.to_string())?;
            let workload = workload.load()?;
            let output = mmusim_report::run::run(&config, &workload).map_err(|e| e.to_string())?;
            let dir = mmusim_report::summary::write_summary(&out, &output).map_err(|e| e.to_string())?;
            emit(&mmusim_report::summary::render(&output))?;
            emit(&format!("  wrote summary.json, metrics.csv, histograms.csv and .hgrm files to {}\n", dir.display()))?;
        }
        Command::Config(ConfigCommand::Show { file, overrides }) => {
            let config = mmusim_report::config_file::load(&file, &overrides).map_err(|e| e.to_string())?;
            emit(&config.to_toml())?;
        }
        Command::Trace(TraceCommand::Info { files, format, json }) => {
            let mut infos = Vec::with_capacity(files.len());
            for file in &files {
                let reader = mmusim_trace::TraceReader::open_as(file, format).map_err(|e| e.to_string())?;
                let info = mmusim_trace::TraceInfo::collect(reader).map_err(|e| e.to_string())?;
                if !json {
                    emit(&mmusim_report::trace_info::render(&info))?;
                }
                infos.push(info);
            }
            if json {
                emit(&(serde_json::to_string_pretty(&infos).map_err(|e| e.to_string())? + "\n"))?;
            }
        }
        Command::Trace(TraceCommand::Mix { workload, output }) => {
            let workload = workload.load()?;
            let mut mix = workload.open().map_err(|e| e.to_string())?;
            let names: Vec<String> = workload.traces.iter().map(|t| t.path.display().to_string()).collect();
            let description = format!(
                "mixed by mmusim {} from {} with a quantum of {} instructions",
                env!("CARGO_PKG_VERSION"),
                names.join(", "),
                workload.quantum
            );
            let written = mmusim_trace::write_trace(&mut mix, &output, OutputFormat::Mmusim, &description)
                .map_err(|e| e.to_string())?;
            emit(&format!(
                "{}: {} references, {} instructions\n",
                output.display(),
                written.records,
                written.instructions
            ))?;
        }
        Command::Convert { input, output, format, to } => {
            let to = to.unwrap_or_else(|| OutputFormat::from_path(&output));
            let summary = mmusim_trace::convert(&input, format, &output, to).map_err(|e| e.to_string())?;
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
    Ok(())
}
