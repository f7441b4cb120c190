//! Errors of the command line, with their exit codes.

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or bad input data: exit code 2.
    #[error("{0}")]
    Input(String),
    /// Something failed while running: exit code 1.
    #[error("{0}")]
    Runtime(String),
}

impl CliError {
    /// A usage or input error.
    pub fn input(msg: impl Into<String>) -> Self {
        CliError::Input(msg.into())
    }

    /// A runtime failure.
    pub fn runtime(msg: impl Into<String>) -> Self {
        CliError::Runtime(msg.into())
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Input(_) => 2,
            CliError::Runtime(_) => 1,
        }
    }
}

impl From<gpujobs_core::ValidationError> for CliError {
    fn from(e: gpujobs_core::ValidationError) -> Self {
        CliError::Input(e.to_string())
    }
}

impl From<gpujobs_core::ClientError> for CliError {
    fn from(e: gpujobs_core::ClientError) -> Self {
        match e {
            gpujobs_core::ClientError::Invalid(v) => CliError::Input(v.to_string()),
            other => CliError::Runtime(other.to_string()),
        }
    }
}

impl From<gpujobs_core::QueueError> for CliError {
    fn from(e: gpujobs_core::QueueError) -> Self {
        match e {
            gpujobs_core::QueueError::Invalid(v) => CliError::Input(v.to_string()),
            e @ gpujobs_core::QueueError::Misconfigured(_) => CliError::Input(e.to_string()),
            other => CliError::Runtime(other.to_string()),
        }
    }
}
