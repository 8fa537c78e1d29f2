//! A machine without its output type: what the engine holds (machines of every kind in one
//! map) and what a transmit's answer is fed to, by either driver.

use removebgvideo_core::machine::{BodyPlan, Machine, Transmit, TransportError};
use removebgvideo_core::{Event, Headers, Job, Timestamp};

/// The inputs and outputs of any machine, without its output type.
pub(crate) trait MachineView {
    fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit>;
    fn poll_timeout(&self) -> Option<Timestamp>;
    fn handle_timeout(&mut self, now: Timestamp);
    fn handle_response(&mut self, status: u16, headers: Headers, body: &[u8], now: Timestamp);
    fn handle_transport_error(&mut self, failure: TransportError, now: Timestamp);
    fn handle_head(&mut self, status: u16, headers: Headers, now: Timestamp) -> BodyPlan;
    fn handle_body_bytes(&mut self, n: u64, now: Timestamp);
    fn handle_body_end(&mut self, end: Result<(), TransportError>, now: Timestamp);
    fn room(&self) -> Option<u64>;
    fn handle_job_update(&mut self, job: Job, now: Timestamp);
    fn updates_for(&self) -> Option<&str>;
    fn cancel(&mut self);
    fn poll_event(&mut self) -> Option<Event>;
}

impl<M: Machine> MachineView for M {
    fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit> {
        Machine::poll_transmit(self, now)
    }
    fn poll_timeout(&self) -> Option<Timestamp> {
        Machine::poll_timeout(self)
    }
    fn handle_timeout(&mut self, now: Timestamp) {
        Machine::handle_timeout(self, now)
    }
    fn handle_response(&mut self, status: u16, headers: Headers, body: &[u8], now: Timestamp) {
        Machine::handle_response(self, status, headers, body, now)
    }
    fn handle_transport_error(&mut self, failure: TransportError, now: Timestamp) {
        Machine::handle_transport_error(self, failure, now)
    }
    fn handle_head(&mut self, status: u16, headers: Headers, now: Timestamp) -> BodyPlan {
        Machine::handle_head(self, status, headers, now)
    }
    fn handle_body_bytes(&mut self, n: u64, now: Timestamp) {
        Machine::handle_body_bytes(self, n, now)
    }
    fn handle_body_end(&mut self, end: Result<(), TransportError>, now: Timestamp) {
        Machine::handle_body_end(self, end, now)
    }
    fn room(&self) -> Option<u64> {
        Machine::room(self)
    }
    fn handle_job_update(&mut self, job: Job, now: Timestamp) {
        Machine::handle_job_update(self, job, now)
    }
    fn updates_for(&self) -> Option<&str> {
        Machine::updates_for(self)
    }
    fn cancel(&mut self) {
        Machine::cancel(self)
    }
    fn poll_event(&mut self) -> Option<Event> {
        Machine::poll_event(self)
    }
}
