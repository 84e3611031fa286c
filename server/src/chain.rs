//! How the answers of a hook's endpoints combine into one verdict.
//!
//! The rules are vmq's `all_till_ok`: endpoints are asked in registration
//! order, the first `ok` wins and later endpoints are not asked, `next` passes
//! on to the next endpoint, any error (denied, unreachable, timeout, invalid
//! answer) stops the chain with that error, and when every endpoint says
//! `next` (or there are none) the verdict is `next`.

use std::future::Future;

use hookd_proto::Verdict;

/// Asks `endpoints` in order through `ask` and combines the answers.
pub async fn run<E, F, Fut>(endpoints: impl IntoIterator<Item = E>, mut ask: F) -> Verdict
where
    F: FnMut(E) -> Fut,
    Fut: Future<Output = Verdict>,
{
    for endpoint in endpoints {
        match ask(endpoint).await {
            // An acknowledgement is no opinion in a chain.
            Verdict::Next | Verdict::Ack => continue,
            decided => return decided,
        }
    }
    Verdict::Next
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;
    use hookd_proto::ErrorKind;

    /// Runs a chain over canned answers; returns the verdict and how many
    /// endpoints were asked.
    async fn chain(answers: Vec<Verdict>) -> (Verdict, usize) {
        let asked = RefCell::new(0);
        let verdict = run(answers, |answer| {
            *asked.borrow_mut() += 1;
            async move { answer }
        })
        .await;
        (verdict, asked.into_inner())
    }

    fn denied() -> Verdict {
        Verdict::error(ErrorKind::Denied, "no")
    }

    #[tokio::test]
    async fn first_ok_wins_and_stops() {
        assert_eq!(
            chain(vec![Verdict::ok(), denied(), Verdict::Next]).await,
            (Verdict::ok(), 1)
        );
    }

    #[tokio::test]
    async fn next_passes_on_to_the_next_endpoint() {
        assert_eq!(
            chain(vec![Verdict::Next, Verdict::Next, Verdict::ok()]).await,
            (Verdict::ok(), 3)
        );
    }

    #[tokio::test]
    async fn an_error_stops_the_chain() {
        assert_eq!(
            chain(vec![Verdict::Next, denied(), Verdict::ok()]).await,
            (denied(), 2)
        );
    }

    #[tokio::test]
    async fn all_next_or_no_endpoints_is_next() {
        assert_eq!(
            chain(vec![Verdict::Next, Verdict::Next]).await,
            (Verdict::Next, 2)
        );
        assert_eq!(chain(vec![]).await, (Verdict::Next, 0));
    }
}
