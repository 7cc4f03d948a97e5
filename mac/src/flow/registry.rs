//! Every flow of the system, in the order added: names are unique
//! system-wide (not per link), like the link registry's ([`crate::link`]).
//! Flows live in memory only — there is no persistent configuration — so
//! every flow is temporary and gone at reboot.
//!
//! A flow is in two places: here (by name) and in the flow table of its
//! link's MAC client (for the data path). Both change under this
//! registry's lock, the table's own lock taken inside it; a refused
//! change leaves both as they were. A link's client is never removed
//! while flows are on it: `dladm delete-vnic` refuses ([`on_link`]).

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use spin::Mutex;

use super::desc::FlowDesc;
use super::entry::{FlowEntry, FlowProps};
use super::table::TableError;
use crate::link::Datalink;

/// Longest flow name (illumos `MAXFLOWNAMELEN` - 1).
pub const MAX_FLOW_NAME: usize = 31;
/// Most flows in the system (each holds two shapers whose queues may
/// fill: the bound keeps the memory flows can pin bounded).
pub const MAX_FLOWS: usize = 65536;

/// Whether `name` is a valid flow name: 1 to [`MAX_FLOW_NAME`] characters
/// of `[A-Za-z0-9_.-]`, starting with a letter.
pub fn valid_flow_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_FLOW_NAME
        && b[0].is_ascii_alphabetic()
        && b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Why a flow operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowError {
    InvalidName(String),
    Exists(String),
    NotFound(String),
    /// The link has no MAC client to carry flows (an etherstub).
    NoClient(String),
    /// The link's table refused it: (flow, link, why).
    Table(String, String, TableError),
    /// [`MAX_FLOWS`] flows exist already.
    TooMany,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlowError::InvalidName(n) => write!(
                f,
                "invalid flow name '{n}': a flow name has at most {MAX_FLOW_NAME} letters, digits, '_', '.' or '-' and starts with a letter"
            ),
            FlowError::Exists(n) => write!(f, "flow '{n}' already exists"),
            FlowError::NotFound(n) => write!(f, "flow '{n}' does not exist"),
            FlowError::NoClient(l) => write!(f, "link '{l}' carries no traffic of its own (an etherstub): add the flow to a VNIC on it"),
            FlowError::Table(n, l, TableError::MaskMismatch(table, new)) => write!(
                f,
                "cannot add flow '{n}' to link '{l}': the flows on '{l}' use the attribute combination {}, \
                 incompatible with this flow's {} (all flows on a link must use the same combination)",
                table.describe(),
                new.describe()
            ),
            FlowError::Table(n, l, TableError::SameAttributes(other)) => {
                write!(f, "cannot add flow '{n}' to link '{l}': flow '{other}' on it has the same attributes")
            }
            FlowError::TooMany => write!(f, "too many flows: the system holds at most {MAX_FLOWS}"),
        }
    }
}

static FLOWS: Mutex<Vec<Arc<FlowEntry>>> = Mutex::new(Vec::new());

/// Every flow, in the order added.
pub fn flows() -> Vec<Arc<FlowEntry>> {
    FLOWS.lock().clone()
}

/// The flow named `name`.
pub fn flow(name: &str) -> Option<Arc<FlowEntry>> {
    FLOWS.lock().iter().find(|f| f.name() == name).cloned()
}

/// The flows on link `link`, in the order added.
pub fn on_link(link: &str) -> Vec<Arc<FlowEntry>> {
    FLOWS.lock().iter().filter(|f| f.link() == link).cloned().collect()
}

/// Checks that flow `name` with `desc` could be added to `link` (nothing
/// changes).
pub fn check_add(name: &str, link: &Datalink, desc: &FlowDesc) -> Result<(), FlowError> {
    let reg = FLOWS.lock();
    check_locked(&reg, name, link, desc)
}

fn check_locked(reg: &[Arc<FlowEntry>], name: &str, link: &Datalink, desc: &FlowDesc) -> Result<(), FlowError> {
    if !valid_flow_name(name) {
        return Err(FlowError::InvalidName(String::from(name)));
    }
    if reg.iter().any(|f| f.name() == name) {
        return Err(FlowError::Exists(String::from(name)));
    }
    if reg.len() >= MAX_FLOWS {
        return Err(FlowError::TooMany);
    }
    let Some(client) = link.client() else {
        return Err(FlowError::NoClient(String::from(link.name())));
    };
    client.flows().read().check(desc).map_err(|e| FlowError::Table(String::from(name), String::from(link.name()), e))
}

/// Adds flow `name` on `link`: checked completely first, then put in the
/// link's table and here.
pub fn add(name: &str, link: &Datalink, desc: FlowDesc, props: FlowProps, temporary: bool) -> Result<Arc<FlowEntry>, FlowError> {
    let mut reg = FLOWS.lock();
    check_locked(&reg, name, link, &desc)?;
    let Some(client) = link.client() else {
        return Err(FlowError::NoClient(String::from(link.name())));
    };
    let f = Arc::new(FlowEntry::new(name, link.name(), desc, props, temporary, &client));
    client.flows().insert(f.clone()).map_err(|e| FlowError::Table(String::from(name), String::from(link.name()), e))?;
    reg.push(f.clone());
    Ok(f)
}

/// Removes flow `name` from its link and from here; what waits in its
/// shapers goes on through the link.
pub fn remove(name: &str) -> Result<Arc<FlowEntry>, FlowError> {
    let mut reg = FLOWS.lock();
    let i = reg.iter().position(|f| f.name() == name).ok_or_else(|| FlowError::NotFound(String::from(name)))?;
    let f = reg.remove(i);
    if let Some(c) = f.client() {
        c.flows().remove(name);
        c.release_flow(&f);
    }
    Ok(f)
}

/// Removes every flow on `link`; returns them.
pub fn remove_link(link: &str) -> Vec<Arc<FlowEntry>> {
    let mut reg = FLOWS.lock();
    let (gone, kept): (Vec<_>, Vec<_>) = core::mem::take(&mut *reg).into_iter().partition(|f| f.link() == link);
    *reg = kept;
    for f in &gone {
        if let Some(c) = f.client() {
            c.flows().remove(f.name());
            c.release_flow(f);
        }
    }
    gone
}

/// Sets the properties of flow `name`.
pub fn set_props(name: &str, props: FlowProps) -> Result<(), FlowError> {
    let reg = FLOWS.lock();
    let f = reg.iter().find(|f| f.name() == name).ok_or_else(|| FlowError::NotFound(String::from(name)))?;
    f.set_props(props);
    Ok(())
}
