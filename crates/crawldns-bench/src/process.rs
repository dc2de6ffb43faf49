//! Running helper processes with a time limit.

use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Runs `command` to completion, capturing stdout and stderr, and kills it
/// if it is still running after `limit`.
pub fn output_with_timeout(command: &mut Command, limit: Duration) -> Result<Output> {
    output_inner(command, limit, true)
}

/// Like [`output_with_timeout`], but the child's stderr goes to ours (so its
/// progress shows), and only stdout is captured.
pub fn stdout_with_timeout(command: &mut Command, limit: Duration) -> Result<Output> {
    output_inner(command, limit, false)
}

fn output_inner(command: &mut Command, limit: Duration, capture_stderr: bool) -> Result<Output> {
    command.stdout(Stdio::piped());
    if capture_stderr {
        command.stderr(Stdio::piped());
    }
    let mut child = command.spawn().context("spawning")?;
    let stdout = child.stdout.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    });
    let stderr = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = pipe.read_to_end(&mut buf);
            buf
        })
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for child")? {
            break status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("killed after {limit:?} (time limit)");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let join = |h: Option<std::thread::JoinHandle<Vec<u8>>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    Ok(Output {
        status,
        stdout: join(stdout),
        stderr: join(stderr),
    })
}
