//! The fault matrix: what an adversarial or broken peer, a hostile
//! environment or an operator's mistake can do to hookd, and what hookd does
//! instead of falling over. Every case runs against real sockets on loopback
//! (an in-process hookd, or the real binary where a process, its limits or
//! its signals are the point) and is bounded in time.
//!
//! | fault | what must hold | module |
//! |---|---|---|
//! | 1. a frame over the size limit, not UTF-8 or not protobuf | only that call fails (`invalid_call`), the stream goes on; a stream that must end ends with an error status | [`frames`] |
//! | 2. SIGTERM with idle, half-open and frozen peers; connections that never speak; calls in flight | calls finish within `shutdown_grace_ms`, the rest `overloaded`; every connection closed; the port free at once; handshake, idle and keepalive bounds, on the metrics listener too | [`shutdown`], [`metrics_listener`] |
//! | 3. out of file descriptors | soft limit raised at start; accept errors logged, counted and waited out without spinning; serving resumes; a webhook call that cannot connect says hookd is out of descriptors | [`descriptors`] |
//! | 4. a hung endpoint; a broker writing into a full window | the bulkhead fails calls to it fast; a grpcio-style broker is slowed by flow control and every call is answered | [`window`], `concurrency` |
//! | 5. too many streams or connections; stream churn | refused `RESOURCE_EXHAUSTED` (or closed as accepted) and counted; RSS back near its baseline after churn | [`limits`], [`memory`], [`metrics_listener`] |
//! | 6. credentials in webhook URLs | never in logs or verdict reasons | [`secrets`] |
//! | 7. foreign `HOOKD_*` variables; bad values | ignored; errors name the variable | [`startup`] |
//! | 8. duplicate call ids; unbounded timeouts; port clashes | the duplicate unanswered, the original answered once; timeouts bounded at load; the listener named; each error said once | `malformed`, [`startup`] |

mod descriptors;
mod frames;
mod limits;
mod memory;
mod metrics_listener;
mod shutdown;
mod startup;
mod window;
