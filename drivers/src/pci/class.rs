//! Names of common class / subclass codes, as `scanpci` prints them.

/// A human name for a class code, most specific first; `None` for
/// unknown classes.
pub fn class_name(class: u8, subclass: u8, prog_if: u8) -> Option<&'static str> {
    let name = match (class, subclass, prog_if) {
        (0x01, 0x01, _) => "IDE interface",
        (0x01, 0x06, _) => "SATA controller",
        (0x01, 0x08, _) => "Non-Volatile memory controller",
        (0x01, 0x00, _) => "SCSI storage controller",
        (0x01, _, _) => "Mass storage controller",
        (0x02, 0x00, _) => "Ethernet controller",
        (0x02, _, _) => "Network controller",
        (0x03, 0x00, _) => "VGA compatible controller",
        (0x03, _, _) => "Display controller",
        (0x04, _, _) => "Multimedia controller",
        (0x05, _, _) => "Memory controller",
        (0x06, 0x00, _) => "Host bridge",
        (0x06, 0x01, _) => "ISA bridge",
        (0x06, 0x04, _) => "PCI bridge",
        (0x06, _, _) => "Bridge",
        (0x07, 0x00, _) => "Serial controller",
        (0x07, _, _) => "Communication controller",
        (0x08, _, _) => "System peripheral",
        (0x09, _, _) => "Input device controller",
        (0x0c, 0x03, _) => "USB controller",
        (0x0c, 0x05, _) => "SMBus",
        (0x0c, _, _) => "Serial bus controller",
        (0x0d, _, _) => "Wireless controller",
        (0x00, 0x01, _) => "VGA compatible unclassified device",
        (0x00, _, _) => "Unclassified device",
        _ => return None,
    };
    Some(name)
}
