//! Errors of device discovery and set-up. Run-time device faults are not
//! errors: they are counted and recovered from where they happen.

/// Why a device could not be probed or started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Not a device this driver handles.
    NotSupported,
    /// A required PCI or virtio capability is missing or malformed.
    MissingCapability(&'static str),
    /// A BAR is absent, not memory, or too small for what lives in it.
    BadBar,
    /// The device has no MSI-X, or too few vectors / none could be allocated.
    NoMsix,
    /// DMA memory could not be allocated.
    NoMemory,
    /// The device does not offer `VIRTIO_F_VERSION_1`.
    NotModern,
    /// The device refused the negotiated features (FEATURES_OK cleared).
    FeaturesRejected,
    /// A queue the driver needs does not exist (size 0).
    QueueUnavailable(u16),
    /// The device did not accept an MSI-X vector for a queue or config.
    VectorRejected,
    /// The device did not complete a reset or a control command in time.
    Timeout,
    /// The device answered a control command with an error.
    Device,
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Error::NotSupported => write!(f, "device not supported"),
            Error::MissingCapability(c) => write!(f, "missing capability: {c}"),
            Error::BadBar => write!(f, "bad BAR"),
            Error::NoMsix => write!(f, "no usable MSI-X"),
            Error::NoMemory => write!(f, "out of DMA memory"),
            Error::NotModern => write!(f, "device lacks VIRTIO_F_VERSION_1"),
            Error::FeaturesRejected => write!(f, "device rejected features"),
            Error::QueueUnavailable(q) => write!(f, "virtqueue {q} unavailable"),
            Error::VectorRejected => write!(f, "device rejected an MSI-X vector"),
            Error::Timeout => write!(f, "device timed out"),
            Error::Device => write!(f, "device error"),
        }
    }
}
