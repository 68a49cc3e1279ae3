//! The `fleetsim` command line: parses arguments, calls the library, maps
//! errors to exit code 2 with a one-paragraph message.

use clap::{Parser, Subcommand, ValueEnum};
use fleetsim::output::report as html;
use fleetsim::output::trace::{self, TraceOptions};
use fleetsim::scenario::{self, validate};
use fleetsim::{Error, bench, catalog, fidelity, search, workload};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `println!` to stdout that ends the program quietly when the reader has
/// gone (e.g. `fleetsim run | head`) instead of panicking on a broken pipe.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($arg)*) {
            exit_on_broken_pipe(e);
        }
    }};
}

/// `print!` counterpart of [`outln!`].
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = write!(std::io::stdout().lock(), $($arg)*) {
            exit_on_broken_pipe(e);
        }
    }};
}

fn exit_on_broken_pipe(e: std::io::Error) {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to standard output: {e}");
    std::process::exit(2);
}

#[derive(Parser)]
#[command(
    name = "fleetsim",
    version,
    about = "Fast, deterministic simulator of LLM serving fleets"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate a scenario (the built-in default when no file is given).
    Run {
        /// Scenario TOML file.
        scenario: Option<PathBuf>,
        /// Override a key, e.g. --set cluster.replicas=4 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Write summary.json, requests.csv and timeseries.csv into DIR.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// How to print the summary on stdout.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Write a Chrome trace-event / Perfetto JSON trace of the run to FILE.
        #[arg(long, value_name = "FILE.json")]
        trace: Option<PathBuf>,
        /// Trace only START:END seconds of simulated time (iterations, counters,
        /// and requests whose lifetime overlaps it), e.g. 100:110, :30, 60:.
        #[arg(long, value_name = "START:END", requires = "trace")]
        trace_window: Option<String>,
        /// Trace at most N request lifecycles (every k-th request by id).
        #[arg(long, value_name = "N", requires = "trace")]
        trace_max_requests: Option<u64>,
        /// Write a self-contained HTML report (charts, tables) to FILE.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
    },
    /// Simulate one step of a training plan (pipeline schedule, memory, DP sync)
    /// and the run around it (failures, checkpoints).
    Train {
        /// Training scenario TOML file (the built-in default when omitted).
        scenario: Option<PathBuf>,
        /// Override a key, e.g. --set parallel.pp=4 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Write train.json into DIR.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Write a Perfetto trace of the step (one track per pipeline device) to FILE.
        #[arg(long, value_name = "FILE.json")]
        trace: Option<PathBuf>,
        /// Write a self-contained HTML report to FILE.
        #[arg(long, value_name = "FILE.html")]
        report: Option<PathBuf>,
    },
    /// Check a scenario (schema, catalog names, memory fit, trace) without running it.
    Validate {
        scenario: PathBuf,
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
    },
    /// List the built-in models or devices.
    Catalog {
        #[arg(value_enum)]
        what: Option<CatalogKind>,
        /// Also load this catalog file (its entries extend or replace the built-in ones).
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
    },
    /// Replay measured serving runs (a folder with cases.csv: open-loop runs, and/or
    /// points.csv: fixed-concurrency benchmark points) and print predicted vs measured latency.
    Fidelity {
        /// Case folder, e.g. ../shared/ground-truth/vllm-h100.
        folder: PathBuf,
        /// Catalog device the cases ran on (default: a point's `device` column, else
        /// inferred from the folder name).
        #[arg(long)]
        device: Option<String>,
        /// Override a key of every case's scenario, e.g. --set hardware.time_model=profile.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Fit time-model constants end to end to measured serving runs (fidelity
    /// folders), printing the fitted `[hardware.calibration]` snippet, the errors
    /// before and after, and with --holdout the leave-one-group-out errors.
    Fit {
        /// Fidelity folders (cases.csv and/or points.csv), e.g. ../shared/ground-truth/vllm-h100.
        #[arg(required = true)]
        folders: Vec<PathBuf>,
        /// A `[hardware.calibration]` key to fit, optionally with its start
        /// (`--param cpu_overhead_base` or `--param cpu_overhead_per_seq=1e-5`); repeatable.
        #[arg(long = "param", value_name = "NAME[=START]", required = true)]
        params: Vec<String>,
        /// Catalog device the rows ran on (default: as `fleetsim fidelity` infers it).
        #[arg(long)]
        device: Option<String>,
        /// Override a key of every row's scenario before fitting.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        /// Refit once per value of this key without its rows and score them
        /// with those constants: model, trace, tp, load or folder.
        #[arg(long, value_name = "KEY")]
        holdout: Option<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Fit a device's time-model constants to operator profiles (a folder laid
    /// out like ../shared/profiles); prints a catalog `[device.calibration]` snippet.
    Calibrate {
        /// Profile folder, e.g. ../shared/profiles.
        profile_dir: PathBuf,
        /// Catalog device to calibrate (default: every catalog device with
        /// compute profiles in the folder).
        #[arg(long)]
        device: Option<String>,
        /// Also load this catalog file (to calibrate a device of your own).
        #[arg(long, value_name = "FILE")]
        catalog: Option<PathBuf>,
        /// `table` prints the TOML snippet; `json` the fit with its errors.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Find each plan's capacity (highest rate within the SLO) over a search space and rank the plans.
    Search {
        /// Search-space file: a scenario plus a [search] section.
        space: PathBuf,
        /// Write plans.jsonl, pareto.csv and best.toml into DIR (a rerun resumes).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Override a key, e.g. --set search.gpu_budget=4 or --set workload.count=1000 (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        sets: Vec<String>,
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Worker threads (default: one per core).
        #[arg(long, value_name = "N")]
        threads: Option<usize>,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Write a self-contained HTML report (Pareto plot, top plans) to FILE.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Run the fixed benchmark scenarios (S1–S11) and print wall time and simulated requests/s.
    Bench {
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
        /// Run only these (comma-separated names, e.g. S1,S3).
        #[arg(long, value_delimiter = ',', conflicts_with = "routers")]
        only: Vec<String>,
        /// Instead: the wall time per simulated request of every built-in router (or
        /// these, comma-separated) in S7's shape at each --replicas size, and the ratio
        /// of the largest fleet's to the smallest's.
        #[arg(long, value_delimiter = ',', num_args = 0.., value_name = "ROUTER")]
        routers: Option<Vec<String>>,
        /// Fleet sizes of --routers (comma-separated).
        #[arg(long, value_delimiter = ',', default_values_t = [16, 1024], requires = "routers")]
        replicas: Vec<u32>,
        /// Requests per --routers run.
        #[arg(long, default_value_t = 1_000_000, requires = "routers")]
        requests: u64,
    },
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum CatalogKind {
    Models,
    Devices,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(cmd: Option<Command>) -> Result<(), Error> {
    match cmd.unwrap_or(Command::Run {
        scenario: None,
        sets: Vec::new(),
        out: None,
        format: Format::Table,
        quiet: false,
        trace: None,
        trace_window: None,
        trace_max_requests: None,
        report: None,
    }) {
        Command::Run {
            scenario,
            sets,
            out,
            format,
            quiet,
            trace,
            trace_window,
            trace_max_requests,
            report,
        } => {
            let trace = match trace {
                Some(path) => {
                    let window = trace_window
                        .as_deref()
                        .map(TraceOptions::parse_window)
                        .transpose()?;
                    Some((
                        path,
                        TraceOptions {
                            window,
                            max_requests: trace_max_requests,
                        },
                    ))
                }
                None => None,
            };
            let outputs = Outputs { out, trace, report };
            run(scenario, &sets, outputs, format, quiet)
        }
        Command::Train {
            scenario,
            sets,
            out,
            format,
            trace,
            report,
        } => train(scenario, &sets, out, format, trace, report),
        Command::Validate { scenario, sets } => {
            let s = scenario::load(Some(&scenario), &sets)?;
            let plan = validate::plan(&s)?;
            workload::validate(&s.workload)?;
            // Builds the time model too (the profile model reads its tables).
            fleetsim::engine::time_model(&plan)?;
            outln!(
                "{}: ok — {} on {}; {} KV blocks of {} tokens per replica ({:.1} GiB)",
                scenario.display(),
                plan.model.name,
                plan.shape(),
                plan.memory.num_blocks,
                plan.scenario.scheduler.block_size,
                plan.memory.kv_bytes / (1024.0 * 1024.0 * 1024.0),
            );
            Ok(())
        }
        Command::Catalog { what, file } => {
            let mut c = catalog::Catalog::builtin();
            if let Some(f) = file {
                c.merge_file(&f)?;
            }
            if what != Some(CatalogKind::Devices) {
                outln!("{}", catalog::render_models(&c));
            }
            if what != Some(CatalogKind::Models) {
                outln!("{}", catalog::render_devices(&c));
            }
            Ok(())
        }
        Command::Fidelity {
            folder,
            device,
            sets,
            format,
        } => {
            if fleetsim::train::fidelity::is_training_folder(&folder) {
                let report = fleetsim::train::fidelity::run(&folder, &sets)?;
                match format {
                    Format::Json => outln!("{}", report.to_json()),
                    Format::Table => outln!("{}", report.to_table()),
                }
                return Ok(());
            }
            let report = fidelity::run(
                &folder,
                &fidelity::Options {
                    device,
                    overrides: sets,
                },
            )?;
            match format {
                Format::Json => outln!("{}", report.to_json()),
                Format::Table => outln!("{}", report.to_table()),
            }
            Ok(())
        }
        Command::Fit {
            folders,
            params,
            device,
            sets,
            holdout,
            format,
        } => {
            let options = fidelity::Options {
                device,
                overrides: Vec::new(),
            };
            let prepared = folders
                .iter()
                .map(|f| fidelity::prepare(f, &options))
                .collect::<Result<Vec<_>, _>>()?;
            let report = fidelity::fit::fit(
                &prepared,
                &fidelity::fit::FitOptions {
                    params,
                    overrides: sets,
                    holdout,
                },
            )?;
            match format {
                Format::Json => outln!("{}", report.to_json()),
                Format::Table => outln!("{}", report.to_table()),
            }
            Ok(())
        }
        Command::Calibrate {
            profile_dir,
            device,
            catalog: file,
            format,
        } => calibrate(&profile_dir, device, file, format),
        Command::Search {
            space,
            out,
            sets,
            format,
            threads,
            quiet,
            report,
        } => search_cmd(
            &space,
            out.as_deref(),
            &sets,
            format,
            threads,
            quiet,
            report.as_deref(),
        ),
        Command::Bench {
            format,
            routers: Some(routers),
            replicas,
            requests,
            ..
        } => {
            let rows = bench::router_scaling(&routers, &replicas, requests)?;
            match format {
                Format::Json => outln!("{}", bench::routers_to_json(&rows)),
                Format::Table => out!("{}", bench::routers_to_table(&rows)),
            }
            Ok(())
        }
        Command::Bench { format, only, .. } => {
            let results = bench::run(&only)?;
            match format {
                Format::Json => outln!("{}", bench::to_json(&results)),
                Format::Table => outln!("{}", bench::to_table(&results)),
            }
            Ok(())
        }
    }
}

fn calibrate(dir: &Path, device: Option<String>, file: Option<PathBuf>, format: Format) -> Result<(), Error> {
    use fleetsim::timing::profile::{fit, mlp_tables};
    if !dir.is_dir() {
        return Err(Error::config(
            "calibrate",
            format!("{} is not a folder", dir.display()),
        ));
    }
    let mut cat = catalog::Catalog::builtin();
    if let Some(f) = &file {
        cat.merge_file(f)?;
    }
    let devices: Vec<catalog::DeviceSpec> = match &device {
        Some(name) => vec![cat.device(name)?.clone()],
        None => cat
            .devices
            .iter()
            .filter(|d| mlp_tables(dir, d).is_ok_and(|t| !t.is_empty()))
            .cloned()
            .collect(),
    };
    if devices.is_empty() {
        return Err(Error::config(
            "calibrate",
            format!("no catalog device has compute profiles under {}", dir.display()),
        ));
    }
    let mut fits = Vec::new();
    for d in &devices {
        let start = validate::resolve_calibration(d, fleetsim::registry::BASE_ENGINE, &Default::default())?;
        fits.push(fit::calibrate(dir, d, start)?);
    }
    match format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&fits).expect("calibration fits serialize")
        ),
        Format::Table => {
            for (d, f) in devices.iter().zip(&fits) {
                let cmd = format!("fleetsim calibrate {} --device {}", dir.display(), d.name);
                outln!("{}", f.to_toml(&cmd));
            }
        }
    }
    Ok(())
}

fn train(
    path: Option<PathBuf>,
    sets: &[String],
    out: Option<PathBuf>,
    format: Format,
    trace: Option<PathBuf>,
    report: Option<PathBuf>,
) -> Result<(), Error> {
    use fleetsim::train::{config::TrainScenario, output, run};
    let s: TrainScenario = scenario::load::load_training(path.as_deref(), sets)?;
    let plan = run::plan(&s)?;
    let result = run::simulate(&plan)?;
    if let Some(dir) = out {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        fleetsim::output::atomic::write_bytes(
            &dir.join("train.json"),
            output::to_json(&result.report).as_bytes(),
        )?;
    }
    if let Some(path) = trace {
        fleetsim::output::atomic::write_bytes(&path, output::trace_json(&result).as_bytes())?;
    }
    if let Some(path) = report {
        fleetsim::output::atomic::write_bytes(&path, output::report_html(&result).as_bytes())?;
    }
    match format {
        Format::Json => outln!("{}", output::to_json(&result.report)),
        Format::Table => outln!("{}", output::to_table(&result.report)),
    }
    Ok(())
}

/// `fleetsim search` over training plans (a space with `[parallel]` or `[training]`).
fn train_search(
    path: &Path,
    out: Option<&Path>,
    sets: &[String],
    format: Format,
    pool: &rayon::ThreadPool,
) -> Result<(), Error> {
    use fleetsim::train::search as ts;
    let space = ts::load(path, sets)?;
    let outcome = pool.install(|| ts::run(&space))?;
    if let Some(dir) = out {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let mut lines = String::new();
        for p in &outcome.plans {
            lines.push_str(&serde_json::to_string(p).expect("a plan serializes"));
            lines.push('\n');
        }
        fleetsim::output::atomic::write_bytes(&dir.join("plans.jsonl"), lines.as_bytes())?;
        let pruned = serde_json::to_string_pretty(&outcome.pruned).expect("reasons serialize");
        fleetsim::output::atomic::write_bytes(&dir.join("pruned.json"), pruned.as_bytes())?;
        if let Some(best) = ts::best_toml(&space, &outcome) {
            fleetsim::output::atomic::write_bytes(&dir.join("best.toml"), best.as_bytes())?;
        }
    }
    match format {
        Format::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&outcome).expect("an outcome serializes")
        ),
        Format::Table => outln!("{}", ts::to_table(&outcome, space.search.top)),
    }
    if outcome.plans.is_empty() {
        return Err(Error::Infeasible(format!(
            "none of the {} training plans can run (reasons above)",
            outcome.candidates
        )));
    }
    Ok(())
}

/// Files a run writes besides stdout.
struct Outputs {
    out: Option<PathBuf>,
    trace: Option<(PathBuf, TraceOptions)>,
    report: Option<PathBuf>,
}

fn run(
    path: Option<PathBuf>,
    sets: &[String],
    outputs: Outputs,
    format: Format,
    quiet: bool,
) -> Result<(), Error> {
    let s = scenario::load(path.as_deref(), sets)?;
    let plan = validate::plan(&s)?;
    let total = (s.workload.count > 0).then_some(s.workload.count);
    let show = !quiet && std::io::stderr().is_terminal();
    let mut progress = Progress::new(show, total);
    let trace_opts = outputs.trace.as_ref().map(|t| &t.1);
    // The trace and the HTML report read every record; otherwise none is
    // kept, so memory does not grow with the request count.
    let records = match &outputs.out {
        _ if outputs.trace.is_some() || outputs.report.is_some() => fleetsim::metrics::Records::Keep,
        Some(dir) => fleetsim::metrics::Records::Stream(dir.join("requests.csv")),
        None => fleetsim::metrics::Records::Drop,
    };
    let report = fleetsim::run_plan_traced(&plan, trace_opts, &records, &mut |n| progress.update(n))?;
    progress.finish();
    for w in &report.summary.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(dir) = outputs.out {
        report.write_dir(&dir)?;
    }
    if let Some((file, _)) = &outputs.trace {
        trace::write_trace(&report, file)?;
    }
    if let Some(file) = &outputs.report {
        html::write_run_report(&report, &s, file)?;
    }
    match format {
        Format::Table => outln!("{}", report.table()),
        Format::Json => outln!("{}", report.summary_json()),
    }
    Ok(())
}

fn search_cmd(
    path: &std::path::Path,
    out: Option<&std::path::Path>,
    sets: &[String],
    format: Format,
    threads: Option<usize>,
    quiet: bool,
    report: Option<&Path>,
) -> Result<(), Error> {
    let mut pool = rayon::ThreadPoolBuilder::new();
    if let Some(n) = threads {
        pool = pool.num_threads(n.max(1));
    }
    let pool = pool
        .build()
        .map_err(|e| Error::config("--threads", e.to_string()))?;
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    if fleetsim::train::search::is_training_space(&text) {
        if let Some(r) = report {
            return Err(Error::config(
                "--report",
                format!(
                    "the HTML report is drawn for serving searches; {} is a training space \
                     (run `fleetsim train BEST.toml --report {}` on a plan it finds)",
                    path.display(),
                    r.display()
                ),
            ));
        }
        return train_search(path, out, sets, format, &pool);
    }
    let space = search::load(path, sets)?;
    let show = !quiet && std::io::stderr().is_terminal();
    let bar = show.then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} plans (ETA {eta}) {msg}",
            )
            .expect("valid template"),
        );
        bar
    });
    let outcome = pool.install(|| {
        search::run(&space, out, &|p: search::Progress| {
            if let Some(bar) = &bar {
                bar.set_length(p.total as u64);
                bar.set_position(p.done as u64);
                if let Some(best) = p.best {
                    bar.set_message(format!("best: {best}"));
                }
            }
        })
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let outcome = outcome?;
    if let Some(file) = report {
        fleetsim::output::report::write_search_report(&search::output::report_input(&outcome), file)?;
    }
    match format {
        Format::Table => {
            out!("{}", search::output::table(&outcome));
            if let Some(dir) = out {
                outln!(
                    "wrote {}/{{plans.jsonl, pareto.csv{}}}",
                    dir.display(),
                    if outcome.best().is_some() {
                        ", best.toml"
                    } else {
                        ""
                    }
                );
            }
        }
        Format::Json => outln!("{}", search::output::to_json(&outcome)),
    }
    Ok(())
}

/// A progress bar that appears only once a run has taken about a second.
struct Progress {
    enabled: bool,
    total: Option<u64>,
    started: Instant,
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(enabled: bool, total: Option<u64>) -> Self {
        Progress {
            enabled,
            total,
            started: Instant::now(),
            bar: None,
        }
    }

    fn update(&mut self, ended: u64) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() && self.started.elapsed() >= Duration::from_secs(1) {
            // Requests that ended (not arrived: under overload every request
            // arrives long before the run ends, and the ETA would say 0 s).
            let bar = match self.total {
                Some(t) => {
                    let bar = indicatif::ProgressBar::new(t);
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} requests done (ETA {eta})",
                        )
                        .expect("valid template"),
                    );
                    bar
                }
                None => {
                    let bar = indicatif::ProgressBar::new_spinner();
                    bar.set_style(
                        indicatif::ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {pos} requests done",
                        )
                        .expect("valid template"),
                    );
                    bar
                }
            };
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(ended);
        }
    }

    fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
