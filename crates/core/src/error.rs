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
}
