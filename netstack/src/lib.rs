//! FireEngine: IP stack instances, the IP classifier, squeues, UDP, TCP and
//! TCP fusion. Talks to the MAC layer only through the MAC client interface.
//!
//! Empty until the network-stack issues land.
#![no_std]
