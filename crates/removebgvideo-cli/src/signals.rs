//! Ctrl-C and SIGTERM as messages. The signal thread only forwards them: what they do is
//! decided on the main thread, so ending a command always takes its normal path (the call is
//! cancelled, guards such as a download's part file run, the exit status is set in one place).

/// A request to stop, from the terminal or from a process manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: `kill`, systemd, Docker, Kubernetes.
    Terminate,
}

impl Signal {
    /// The conventional exit status of a process stopped by this signal: 128 + its number.
    pub fn exit_status(self) -> u8 {
        match self {
            Signal::Interrupt => crate::output::exit::INTERRUPTED,
            Signal::Terminate => crate::output::exit::TERMINATED,
        }
    }

    /// How a person would name it.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "Ctrl-C",
            Signal::Terminate => "SIGTERM",
        }
    }
}

/// Calls `deliver` on a background thread for every SIGINT and SIGTERM from now on. Once this
/// returns, neither signal stops the process by itself any more.
#[cfg(unix)]
pub fn forward(deliver: impl Fn(Signal) + Send + 'static) -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .map_err(|e| format!("cannot handle SIGINT and SIGTERM: {e}"))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for number in signals.forever() {
                deliver(if number == SIGTERM {
                    Signal::Terminate
                } else {
                    Signal::Interrupt
                });
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}

/// Calls `deliver` for every Ctrl-C from now on (the only stop request outside Unix).
#[cfg(not(unix))]
pub fn forward(deliver: impl Fn(Signal) + Send + 'static) -> Result<(), String> {
    ctrlc::set_handler(move || deliver(Signal::Interrupt))
        .map_err(|e| format!("cannot handle Ctrl-C: {e}"))
}
