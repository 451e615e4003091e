use std::time::Duration;

/// What a job that met an error should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Trying again cannot help (the input or the set-up is at fault): give up.
    GiveUp,
    /// Try again after the job's usual backoff (it doubles each attempt).
    Backoff,
    /// Try again, not before this long.
    After(Duration),
}

/// What every babelcast error tells besides its message.
///
/// The code is stable across releases (clients and scripts may match on it); the
/// message is for people and may change.
pub trait ErrorCode {
    /// A short, stable, snake_case machine code, like `probe_not_media`.
    fn code(&self) -> &'static str;

    /// True when the caller can fix it (bad input, missing file), false when babelcast
    /// or its machine is at fault. HTTP maps this to 4xx versus 5xx.
    fn is_client_error(&self) -> bool;

    /// Whether a job that met it should try again, and when: by default it gives
    /// up on the caller's errors and backs off on the rest.
    fn retry(&self) -> Retry {
        if self.is_client_error() { Retry::GiveUp } else { Retry::Backoff }
    }
}
