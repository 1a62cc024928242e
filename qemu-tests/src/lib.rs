//! Host-side harness that boots the loader in QEMU `imx8mp-evk`.
//!
//! [`Qemu::boot`] starts `qemu-system-aarch64` with the loader Image, the
//! console (UART2) on a unix socket that the harness connects to, and the
//! `defmt` UART (UART1) written to a file that [`Qemu::defmt_log`] decodes
//! with `defmt-print`. QEMU is always killed when the [`Qemu`] value is
//! dropped, also while a failing test unwinds.
//!
//! ```no_run
//! use qemu_tests::{Qemu, QemuOpts};
//! let mut q = Qemu::boot(QemuOpts::new(qemu_tests::loader_image())).unwrap();
//! q.wait_prompt().unwrap();
//! let out = q.run("version").unwrap();
//! assert!(out.contains("loader"));
//! ```

pub mod mfg;

use std::fmt;
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

pub mod linux;

/// The console prompt the loader prints (no newline after it).
pub const PROMPT: &str = "=> ";

/// Default time allowed for a boot to reach its prompt or a command to finish.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// The link/load address of the loader (where QEMU places the Image).
pub const LOAD_ADDR: u64 = board::dram::LOAD_ADDR;

/// The page QEMU loads a fuse file into (`-device loader,...`).
pub const FUSES_ADDR: u64 = board::dram::FUSE_PAGE;

/// Everything that can go wrong while driving QEMU. `Debug` prints the
/// same readable text as `Display`, so a test's `unwrap()` shows the
/// console output and QEMU's stderr as lines.
pub enum Error {
    /// QEMU (or another program) could not be started.
    Spawn {
        /// The program.
        program: String,
        /// Why.
        source: io::Error,
    },
    /// The console socket never accepted a connection.
    Connect {
        /// What QEMU printed on stderr.
        stderr: String,
    },
    /// The expected text did not appear in time.
    Timeout {
        /// What was waited for.
        waiting_for: String,
        /// The time allowed.
        after: Duration,
        /// The last console output seen (after the previous match).
        seen: String,
        /// What QEMU printed on stderr.
        stderr: String,
    },
    /// QEMU exited while the harness was still waiting for something.
    Exited {
        /// What was waited for.
        waiting_for: String,
        /// QEMU's exit status.
        status: ExitStatus,
        /// The console output seen since the previous match.
        seen: String,
        /// What QEMU printed on stderr.
        stderr: String,
    },
    /// Reading or writing the console or a file failed.
    Io(io::Error),
    /// `defmt-print` failed.
    Defmt(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Spawn { program, source } => write!(f, "cannot start {program}: {source}"),
            Self::Connect { stderr } => {
                write!(
                    f,
                    "QEMU console socket never came up; QEMU stderr:\n{stderr}"
                )
            }
            Self::Timeout {
                waiting_for,
                after,
                seen,
                stderr,
            } => write!(
                f,
                "timed out after {after:?} waiting for {waiting_for:?}; console since last \
                 match:\n{seen}\n--- QEMU stderr:\n{stderr}"
            ),
            Self::Exited {
                waiting_for,
                status,
                seen,
                stderr,
            } => write!(
                f,
                "QEMU exited ({status}) while waiting for {waiting_for:?}; console since last \
                 match:\n{seen}\n--- QEMU stderr:\n{stderr}"
            ),
            Self::Io(e) => write!(f, "console I/O error: {e}"),
            Self::Defmt(e) => write!(f, "defmt-print: {e}"),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Result alias for the harness.
pub type Result<T> = std::result::Result<T, Error>;

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The cargo target directory (`CARGO_TARGET_DIR` or `<root>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The development OEM key set `cargo xtask build` makes and uses when not
/// given `--keys` (`target/keys/dev`, written by `mfgtool keys new --dev`):
/// its `record.pem` opens the ID records the loader seals, its authority
/// key signs the tests' console unlock tokens.
pub fn dev_keys_dir() -> PathBuf {
    target_dir().join("keys").join("dev")
}

/// The QEMU-board loader Image the tests boot.
///
/// `LOADER_BIN` names it explicitly (`cargo xtask test` sets it after
/// building). Otherwise the harness runs `cargo xtask build --board qemu`
/// once per test process (a no-op when up to date, so the image is never
/// stale) and uses `target/out/qemu/loader.bin`.
pub fn loader_image() -> PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE
        .get_or_init(|| xtask_built_image("LOADER_BIN", false))
        .clone()
}

/// The QEMU-board production loader Image (`cargo xtask build --board qemu
/// --production --allow-dev-keys`, once per process, with the development
/// key set of [`dev_keys_dir`]; `LOADER_BIN_PRODUCTION` overrides).
pub fn production_loader_image() -> PathBuf {
    static IMAGE: OnceLock<PathBuf> = OnceLock::new();
    IMAGE
        .get_or_init(|| xtask_built_image("LOADER_BIN_PRODUCTION", true))
        .clone()
}

/// `$env` if set, else the QEMU loader `cargo xtask build` makes (and
/// brings up to date).
fn xtask_built_image(env: &str, production: bool) -> PathBuf {
    if let Some(p) = std::env::var_os(env) {
        return PathBuf::from(p);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = vec!["build", "--board", "qemu"];
    if production {
        build.extend(["--production", "--allow-dev-keys"]);
    }
    let status = Command::new(cargo)
        .current_dir(workspace_root())
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(&build)
        .status();
    let what = format!("`cargo xtask {}`", build.join(" "));
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{what} failed ({s})"),
        Err(e) => panic!("cannot run cargo for {what}: {e}"),
    }
    let out = if production {
        "qemu-production"
    } else {
        "qemu"
    };
    target_dir().join("out").join(out).join("loader.bin")
}

/// Finds the `defmt-print` binary: `DEFMT_PRINT`, then `PATH`, then cargo's
/// bin directory (where `cargo install` puts it).
pub fn defmt_print_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DEFMT_PRINT") {
        return Some(PathBuf::from(p));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let cand = dir.join("defmt-print");
            if cand.is_file() {
                return Some(cand);
            }
        }
    }
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let cand = cargo_home.join("bin/defmt-print");
    cand.is_file().then_some(cand)
}

/// Decodes a raw `defmt` byte stream with `defmt-print -e ELF`.
pub fn decode_defmt(elf: &Path, raw: &[u8]) -> Result<String> {
    let tool = defmt_print_path()
        .ok_or_else(|| Error::Defmt("not installed (cargo install defmt-print)".into()))?;
    let mut child = Command::new(&tool)
        .arg("-e")
        .arg(elf)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| Error::Spawn {
            program: tool.display().to_string(),
            source,
        })?;
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let raw = raw.to_vec();
    // Feed stdin from a thread so a full stdout pipe cannot deadlock us.
    let feeder = thread::spawn(move || stdin.write_all(&raw));
    let out = child.wait_with_output()?;
    let _ = feeder.join();
    if !out.status.success() {
        return Err(Error::Defmt(format!(
            "exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Options for [`Qemu::boot`] (builder style).
#[derive(Clone, Debug)]
pub struct QemuOpts {
    /// The loader Image (`loader.bin`).
    pub image: PathBuf,
    /// The loader ELF, for `defmt-print` (default: `loader.elf` beside the image).
    pub elf: Option<PathBuf>,
    /// A fuse file QEMU loads at [`FUSES_ADDR`].
    pub fuses: Option<PathBuf>,
    /// A raw disk image attached to USDHC3 (the EVK eMMC slot).
    pub disk: Option<PathBuf>,
    /// Run with `-icount shift=0,sleep=off` (deterministic instruction counts).
    pub icount: bool,
    /// Add `-no-reboot` (a guest reset makes QEMU exit).
    pub no_reboot: bool,
    /// RAM size argument for `-m`.
    pub memory: String,
    /// Extra QEMU arguments, appended last.
    pub extra_args: Vec<String>,
    /// Open an HMP monitor on a Unix socket in the run's scratch directory
    /// (see [`Qemu::hmp`]); otherwise `-monitor none`. [`Self::qemu_args`]
    /// leaves the monitor out when this is set: [`Qemu::boot`] adds it.
    pub monitor: bool,
    /// The QEMU binary.
    pub qemu: PathBuf,
}

impl QemuOpts {
    /// Options to boot `image` with 1 GiB of RAM and nothing attached.
    pub fn new(image: impl Into<PathBuf>) -> Self {
        Self {
            image: image.into(),
            elf: None,
            fuses: None,
            disk: None,
            icount: false,
            no_reboot: false,
            memory: "1G".into(),
            extra_args: Vec::new(),
            monitor: false,
            qemu: std::env::var_os("QEMU")
                .map(PathBuf::from)
                .unwrap_or_else(|| "qemu-system-aarch64".into()),
        }
    }

    /// Sets the ELF used to decode `defmt`.
    pub fn elf(mut self, elf: impl Into<PathBuf>) -> Self {
        self.elf = Some(elf.into());
        self
    }

    /// Loads a fuse file (a virtual chip).
    pub fn fuses(mut self, fuses: impl Into<PathBuf>) -> Self {
        self.fuses = Some(fuses.into());
        self
    }

    /// Attaches a disk image on USDHC3.
    pub fn disk(mut self, disk: impl Into<PathBuf>) -> Self {
        self.disk = Some(disk.into());
        self
    }

    /// Enables or disables deterministic `-icount shift=0,sleep=off`.
    pub fn icount(mut self, on: bool) -> Self {
        self.icount = on;
        self
    }

    /// Makes a guest reset end QEMU instead of rebooting.
    pub fn no_reboot(mut self, on: bool) -> Self {
        self.no_reboot = on;
        self
    }

    /// Sets the RAM size (`-m`).
    pub fn memory(mut self, m: impl Into<String>) -> Self {
        self.memory = m.into();
        self
    }

    /// Opens (or not) an HMP monitor socket for [`Qemu::hmp`].
    pub fn monitor(mut self, on: bool) -> Self {
        self.monitor = on;
        self
    }

    /// Appends one extra QEMU argument.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.extra_args.push(a.into());
        self
    }

    /// Appends extra QEMU arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The ELF to decode `defmt` with.
    pub fn elf_path(&self) -> PathBuf {
        self.elf
            .clone()
            .unwrap_or_else(|| self.image.with_file_name("loader.elf"))
    }

    /// The QEMU command line (without the program) for a console on the
    /// given chardev backend string and `defmt` on `defmt_backend`.
    ///
    /// `console` and `defmt` are `-chardev` specifications without the id,
    /// e.g. `socket,path=/tmp/c.sock,server=on,wait=on` or `stdio`.
    pub fn qemu_args(&self, defmt: &str, console: &str) -> Vec<String> {
        let mut a: Vec<String> = [
            "-M",
            "imx8mp-evk",
            "-m",
            &self.memory,
            "-display",
            "none",
            "-monitor",
            "none",
            "-chardev",
            &format!("{defmt},id=defmt"),
            "-chardev",
            &format!("{console},id=con"),
            // UART1 carries defmt, UART2 is the console.
            "-serial",
            "chardev:defmt",
            "-serial",
            "chardev:con",
            "-kernel",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.monitor {
            // `-monitor none` out: Qemu::boot adds a socket monitor.
            a.drain(6..8);
        }
        a.push(self.image.display().to_string());
        if let Some(f) = &self.fuses {
            a.push("-device".into());
            a.push(format!(
                "loader,file={},addr={FUSES_ADDR:#x},force-raw=on",
                f.display()
            ));
        }
        if let Some(d) = &self.disk {
            a.push("-drive".into());
            a.push(format!(
                "if=sd,bus=2,id=emmc,file={},format=raw",
                d.display()
            ));
        }
        if self.icount {
            a.push("-icount".into());
            a.push("shift=0,sleep=off".into());
        }
        if self.no_reboot {
            a.push("-no-reboot".into());
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }
}

/// Console bytes received so far, shared with the reader thread.
#[derive(Default)]
struct ConsoleBuf {
    bytes: Vec<u8>,
    closed: bool,
}

struct Shared {
    buf: Mutex<ConsoleBuf>,
    cond: Condvar,
}

/// A running QEMU with the loader, its console connected.
pub struct Qemu {
    child: Child,
    console: UnixStream,
    shared: Arc<Shared>,
    /// Offset in the console buffer where the next wait starts.
    cursor: usize,
    dir: PathBuf,
    elf: PathBuf,
    status: Option<ExitStatus>,
}

impl fmt::Debug for Qemu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qemu")
            .field("pid", &self.child.id())
            .field("dir", &self.dir)
            .finish()
    }
}

fn scratch_dir() -> io::Result<PathBuf> {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    // Unix socket paths are limited to ~108 bytes: keep this short.
    let dir = std::env::temp_dir().join(format!("qt-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl Qemu {
    /// Starts QEMU and connects to its console. Does not wait for the prompt.
    pub fn boot(opts: QemuOpts) -> Result<Self> {
        if !opts.image.is_file() {
            return Err(Error::Io(io::Error::new(
                io::ErrorKind::NotFound,
                format!("loader image {} not found", opts.image.display()),
            )));
        }
        let dir = scratch_dir()?;
        let sock = dir.join("con.sock");
        let defmt = dir.join("defmt.bin");
        let mut args = opts.qemu_args(
            &format!("file,path={}", defmt.display()),
            &format!("socket,path={},server=on,wait=on", sock.display()),
        );
        if opts.monitor {
            args.push("-monitor".into());
            args.push(format!(
                "unix:{},server=on,wait=off",
                dir.join("mon.sock").display()
            ));
        }
        let stderr = fs::File::create(dir.join("qemu.stderr"))?;
        let child = Command::new(&opts.qemu)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|source| Error::Spawn {
                program: opts.qemu.display().to_string(),
                source,
            })?;
        let mut q = Self {
            child,
            // Replaced below once connected; a dummy pair keeps the type simple.
            console: UnixStream::pair()?.0,
            shared: Arc::new(Shared {
                buf: Mutex::new(ConsoleBuf::default()),
                cond: Condvar::new(),
            }),
            cursor: 0,
            dir,
            elf: opts.elf_path(),
            status: None,
        };
        let start = Instant::now();
        let console = loop {
            match UnixStream::connect(&sock) {
                Ok(s) => break s,
                Err(_) if start.elapsed() < Duration::from_secs(15) => {
                    if q.child.try_wait()?.is_some() {
                        return Err(Error::Connect { stderr: q.stderr() });
                    }
                    thread::sleep(Duration::from_millis(10));
                }
                Err(_) => {
                    return Err(Error::Connect { stderr: q.stderr() });
                }
            }
        };
        let mut reader = console.try_clone()?;
        q.console = console;
        let shared = Arc::clone(&q.shared);
        thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            loop {
                let n = reader.read(&mut chunk).unwrap_or(0);
                let mut b = shared.buf.lock().unwrap_or_else(|e| e.into_inner());
                if n == 0 {
                    b.closed = true;
                    shared.cond.notify_all();
                    return;
                }
                b.bytes.extend_from_slice(&chunk[..n]);
                shared.cond.notify_all();
            }
        });
        Ok(q)
    }

    /// Runs one HMP monitor command (QEMU started with
    /// [`QemuOpts::monitor`]) and returns its output. The command has
    /// completed when this returns (HMP prints its next prompt after it).
    pub fn hmp(&mut self, cmd: &str) -> Result<String> {
        const PROMPT: &[u8] = b"(qemu) ";
        let mut s = UnixStream::connect(self.dir.join("mon.sock"))?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        let mut got = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut read_to_prompt = |s: &mut UnixStream, got: &mut Vec<u8>| -> Result<()> {
            let start = got.len();
            loop {
                if got[start..].windows(PROMPT.len()).any(|w| w == PROMPT) {
                    return Ok(());
                }
                let n = s.read(&mut chunk)?;
                if n == 0 {
                    return Err(Error::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "monitor closed",
                    )));
                }
                got.extend_from_slice(&chunk[..n]);
            }
        };
        read_to_prompt(&mut s, &mut got)?;
        let banner_len = got.len();
        s.write_all(format!("{cmd}\n").as_bytes())?;
        read_to_prompt(&mut s, &mut got)?;
        Ok(String::from_utf8_lossy(&got[banner_len..]).into_owned())
    }

    /// Starts QEMU and waits for the first prompt; returns the banner too.
    pub fn boot_to_prompt(opts: QemuOpts) -> Result<(Self, String)> {
        let mut q = Self::boot(opts)?;
        let banner = q.wait_prompt()?;
        Ok((q, banner))
    }

    /// What QEMU printed on stderr so far.
    pub fn stderr(&self) -> String {
        fs::read(self.dir.join("qemu.stderr"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Every console byte received so far (lossy UTF-8).
    pub fn console_log(&self) -> String {
        let b = self.shared.buf.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&b.bytes).into_owned()
    }

    /// Every console byte received so far.
    pub fn console_bytes(&self) -> Vec<u8> {
        let b = self.shared.buf.lock().unwrap_or_else(|e| e.into_inner());
        b.bytes.clone()
    }

    /// Waits until `pattern` appears after the previous match and returns
    /// the text from there up to and including `pattern`.
    pub fn wait_for(&mut self, pattern: &str, timeout: Duration) -> Result<String> {
        self.wait_for_bytes(pattern.as_bytes(), timeout)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// [`Qemu::wait_for`] on raw bytes.
    pub fn wait_for_bytes(&mut self, pattern: &[u8], timeout: Duration) -> Result<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let shared = Arc::clone(&self.shared);
        let mut b = shared.buf.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(pos) = find(&b.bytes[self.cursor..], pattern) {
                let end = self.cursor + pos + pattern.len();
                let out = b.bytes[self.cursor..end].to_vec();
                self.cursor = end;
                return Ok(out);
            }
            let seen = String::from_utf8_lossy(&b.bytes[self.cursor..]).into_owned();
            let waiting_for = String::from_utf8_lossy(pattern).into_owned();
            let now = Instant::now();
            if b.closed || now >= deadline {
                drop(b);
                // Give QEMU a moment to finish exiting after closing the socket.
                let status = if self.wait_exit(Duration::from_millis(500)).is_ok() {
                    self.status
                } else {
                    None
                };
                return Err(match status {
                    Some(status) => Error::Exited {
                        waiting_for,
                        status,
                        seen,
                        stderr: self.stderr(),
                    },
                    None => Error::Timeout {
                        waiting_for,
                        after: timeout,
                        seen,
                        stderr: self.stderr(),
                    },
                });
            }
            // Poll QEMU's liveness at least every 200 ms.
            let wait = (deadline - now).min(Duration::from_millis(200));
            b = shared
                .cond
                .wait_timeout(b, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for the next prompt (default timeout) and returns the text before it.
    pub fn wait_prompt(&mut self) -> Result<String> {
        self.wait_prompt_timeout(DEFAULT_TIMEOUT)
    }

    /// Waits for the next prompt and returns the text before it.
    pub fn wait_prompt_timeout(&mut self, timeout: Duration) -> Result<String> {
        let mut s = self.wait_for(PROMPT, timeout)?;
        s.truncate(s.len() - PROMPT.len());
        Ok(s)
    }

    /// Sends raw bytes to the console.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.console.write_all(bytes)?;
        self.console.flush()?;
        Ok(())
    }

    /// Types `line` and Enter (`\r`), without waiting.
    pub fn send_line(&mut self, line: &str) -> Result<()> {
        let mut b = line.as_bytes().to_vec();
        b.push(b'\r');
        self.send_raw(&b)
    }

    /// Runs one command: sends it, waits for the next prompt and returns
    /// the output between the echoed command line and the prompt (the echo
    /// line is stripped; the output keeps its `\r\n` line ends).
    pub fn run(&mut self, cmd: &str) -> Result<String> {
        self.run_timeout(cmd, DEFAULT_TIMEOUT)
    }

    /// [`Qemu::run`] with an explicit timeout.
    pub fn run_timeout(&mut self, cmd: &str, timeout: Duration) -> Result<String> {
        self.send_line(cmd)?;
        // The prompt always starts a line, so "\n=> " cannot be matched
        // inside the echo of the command.
        let pat = format!("\n{PROMPT}");
        let s = self.wait_for(&pat, timeout)?;
        Ok(strip_echo(&s[..s.len() - PROMPT.len()]).to_string())
    }

    /// Decodes everything the loader logged on the `defmt` UART so far.
    pub fn defmt_log(&self) -> Result<String> {
        let raw = fs::read(self.dir.join("defmt.bin"))?;
        decode_defmt(&self.elf, &raw)
    }

    /// Waits until the decoded `defmt` log contains `pattern` and returns
    /// the whole decoded log.
    pub fn wait_defmt(&self, pattern: &str, timeout: Duration) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.defmt_log()?;
            if log.contains(pattern) {
                return Ok(log);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    waiting_for: format!("defmt: {pattern}"),
                    after: timeout,
                    seen: log,
                    stderr: self.stderr(),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// The raw `defmt` bytes received so far.
    pub fn defmt_raw(&self) -> Result<Vec<u8>> {
        Ok(fs::read(self.dir.join("defmt.bin"))?)
    }

    /// Waits for QEMU to exit and returns its status.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.child.try_wait()? {
                self.status = Some(s);
                return Ok(s);
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    waiting_for: "QEMU to exit".into(),
                    after: timeout,
                    seen: String::new(),
                    stderr: self.stderr(),
                });
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// QEMU's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The scratch directory of this run (sockets, defmt stream, stderr).
    pub fn scratch(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Removes the echoed command line (everything up to and including the
/// first `\n`) from a command's captured output.
pub fn strip_echo(s: &str) -> &str {
    match s.find('\n') {
        Some(i) => &s[i + 1..],
        None => "",
    }
}

/// A closed virtual chip with the default MP family secret and a fixed
/// OTPMK derived from `uid` (tests want reproducible chips).
pub fn chip(uid: [u8; 16], srk_hash: [u8; 32]) -> imx_emu::fusefile::FuseFile {
    let mut otpmk = [0u8; 32];
    for (i, b) in otpmk.iter_mut().enumerate() {
        *b = uid[i % 16] ^ 0xa5 ^ u8::try_from(i).unwrap_or(0);
    }
    imx_emu::fusefile::FuseFile {
        uid,
        srk_hash,
        otpmk,
        family_secret: imx_emu::fusefile::DEFAULT_FAMILY_SECRET,
        open: false,
        options: Default::default(),
    }
}

/// Writes raw fuse-file bytes to a fresh file under the system temp
/// directory and returns its path (`name` keeps parallel tests apart).
pub fn write_fuse_file(name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("qt-fuses-{}", std::process::id()));
    fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{name}.fuses"));
    fs::write(&path, bytes)?;
    Ok(path)
}

/// Parses `bench NAME=N` lines out of a decoded `defmt` log.
pub fn bench_marks(log: &str) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for line in log.lines() {
        let Some(i) = line.find("bench ") else {
            continue;
        };
        let rest = &line[i + "bench ".len()..];
        let Some((name, value)) = rest.split_once('=') else {
            continue;
        };
        let digits: String = value
            .trim()
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if name.is_empty() || name.contains(char::is_whitespace) || digits.is_empty() {
            continue;
        }
        if let Ok(v) = digits.parse() {
            out.push((name.to_string(), v));
        }
    }
    out
}

/// Address and size of the first symbol whose (mangled) name contains
/// `part`, from an ELF64 little-endian file's `.symtab`.
pub fn elf_symbol(elf: &[u8], part: &str) -> Option<(u64, u64)> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(elf.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(elf.get(o..o + 4)?.try_into().ok()?));
    let u64_at = |o: usize| Some(u64::from_le_bytes(elf.get(o..o + 8)?.try_into().ok()?));
    let shoff = usize::try_from(u64_at(0x28)?).ok()?;
    let shentsize = usize::from(u16_at(0x3a)?);
    let shnum = usize::from(u16_at(0x3c)?);
    let section = |i: usize| shoff + i * shentsize;
    let off_size = |sh: usize| {
        Some((
            usize::try_from(u64_at(sh + 24)?).ok()?,
            usize::try_from(u64_at(sh + 32)?).ok()?,
        ))
    };
    const SHT_SYMTAB: u32 = 2;
    let symtab = (0..shnum)
        .map(section)
        .find(|&sh| u32_at(sh + 4) == Some(SHT_SYMTAB))?;
    let (sym_off, sym_size) = off_size(symtab)?;
    let strtab = section(usize::try_from(u32_at(symtab + 40)?).ok()?);
    let (str_off, str_size) = off_size(strtab)?;
    let strings = elf.get(str_off..str_off + str_size)?;
    (sym_off..sym_off + sym_size).step_by(24).find_map(|sym| {
        let name_at = usize::try_from(u32_at(sym)?).ok()?;
        let name = strings.get(name_at..)?;
        let name = &name[..name.iter().position(|&b| b == 0)?];
        std::str::from_utf8(name)
            .ok()?
            .contains(part)
            .then(|| Some((u64_at(sym + 8)?, u64_at(sym + 16)?)))?
    })
}

/// The loader's measurement as it locks it into the MPMR at boot: SHA-256
/// of its image from the start to the end of `.rodata` (`__rodata_end`
/// in the `loader.elf` next to `bin`).
pub fn loader_measurement(bin: &Path) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let elf = std::fs::read(bin.with_file_name("loader.elf")).expect("loader.elf");
    let (end, _) = elf_symbol(&elf, "__rodata_end").expect("__rodata_end");
    let image = std::fs::read(bin).expect("loader.bin");
    let len = usize::try_from(end - LOAD_ADDR).expect("in the image");
    Sha256::digest(&image[..len]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_the_echo_line() {
        assert_eq!(
            strip_echo("version\r\nloader 0.1.0\r\n"),
            "loader 0.1.0\r\n"
        );
        assert_eq!(strip_echo("echo\r\n"), "");
        assert_eq!(strip_echo("no newline"), "");
    }

    #[test]
    fn finds_patterns() {
        assert_eq!(find(b"abc\n=> ", b"\n=> "), Some(3));
        assert_eq!(find(b"abc", b"abcd"), None);
        assert_eq!(find(b"abc", b""), Some(0));
    }

    #[test]
    fn parses_bench_marks() {
        let log = "0.000001 INFO bench first_console_byte=1234\n\
                   garbage\n\
                   0.1 INFO bench prompt=56789 (boot)\n\
                   INFO bench cmd=42\n\
                   INFO bench broken=\n\
                   INFO not a bench=5\n";
        assert_eq!(
            bench_marks(log),
            vec![
                ("first_console_byte".to_string(), 1234),
                ("prompt".to_string(), 56789),
                ("cmd".to_string(), 42),
            ]
        );
    }

    #[test]
    fn builds_the_documented_command_line() {
        let o = QemuOpts::new("/x/loader.bin")
            .fuses("/x/chip.fuses")
            .disk("/x/disk.img")
            .icount(true)
            .no_reboot(true)
            .arg("-d")
            .arg("unimp");
        let a = o.qemu_args("file,path=/d", "stdio").join(" ");
        assert!(a.starts_with("-M imx8mp-evk -m 1G -display none -monitor none "));
        assert!(a.contains("-chardev file,path=/d,id=defmt -chardev stdio,id=con"));
        assert!(a.contains("-serial chardev:defmt -serial chardev:con -kernel /x/loader.bin"));
        assert!(a.contains("-device loader,file=/x/chip.fuses,addr=0x40100000,force-raw=on"));
        assert!(a.contains("-drive if=sd,bus=2,id=emmc,file=/x/disk.img,format=raw"));
        assert!(a.contains("-icount shift=0,sleep=off -no-reboot -d unimp"));
        assert_eq!(o.elf_path(), PathBuf::from("/x/loader.elf"));
        let m = o.monitor(true).qemu_args("stdio", "stdio").join(" ");
        assert!(m.starts_with("-M imx8mp-evk -m 1G -display none -chardev "));
        assert!(!m.contains("-monitor"));
    }

    /// A 4 KiB arm64 Image whose first instruction branches to itself.
    fn spin_image(name: &str) -> PathBuf {
        let mut img = vec![0u8; 4096];
        img[0..4].copy_from_slice(&0x1400_0000u32.to_le_bytes()); // b .
        img[8..16].copy_from_slice(&0x20_0000u64.to_le_bytes());
        img[16..24].copy_from_slice(&0x1000u64.to_le_bytes());
        img[0x38..0x3c].copy_from_slice(b"ARM\x64");
        let p = std::env::temp_dir().join(format!("qt-spin-{}-{name}.bin", std::process::id()));
        fs::write(&p, img).unwrap();
        p
    }

    fn alive(pid: u32) -> bool {
        // A reaped process has no /proc entry; a zombie would say "Z".
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    }

    #[test]
    fn qemu_is_killed_on_drop_and_on_panic() {
        let img = spin_image("drop");
        let q = Qemu::boot(QemuOpts::new(&img)).unwrap();
        let pid = q.pid();
        let dir = q.scratch().to_path_buf();
        assert!(alive(pid));
        drop(q);
        assert!(!alive(pid), "QEMU {pid} survived drop");
        assert!(!dir.exists(), "scratch dir left behind");

        let pid = std::sync::Arc::new(AtomicU32::new(0));
        let p2 = std::sync::Arc::clone(&pid);
        let r = std::panic::catch_unwind(move || {
            let mut q = Qemu::boot(QemuOpts::new(&img)).unwrap();
            p2.store(q.pid(), Ordering::SeqCst);
            // Nothing ever prints: this times out, and the test "fails".
            q.wait_prompt_timeout(Duration::from_millis(300)).unwrap();
        });
        let e = r.expect_err("wait_prompt must time out");
        let msg = e.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(
            msg.contains("timed out after 300ms waiting for \"=> \""),
            "{msg}"
        );
        let pid = pid.load(Ordering::SeqCst);
        assert!(pid != 0 && !alive(pid), "QEMU {pid} survived a panic");
        let _ = fs::remove_file(spin_image("drop"));
    }

    #[test]
    fn boot_reports_a_missing_image() {
        let e = Qemu::boot(QemuOpts::new("/nonexistent/loader.bin")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/loader.bin"), "{e}");
    }
}
