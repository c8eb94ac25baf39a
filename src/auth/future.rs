//! [`ResponseFuture`]: the revocation check (when it needs I/O), then the inner service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::body::AuthBody;
use super::layer::Settings;
use super::service::status_result;
use crate::error::{AuthError, StoreError};
use crate::reject::RejectBody;
use crate::store::TokenStatus;

pub(crate) type CheckFuture = Pin<Box<dyn Future<Output = Result<TokenStatus, StoreError>> + Send>>;

pin_project! {
    /// Response future of [`JwtAuth`](crate::JwtAuth).
    pub struct ResponseFuture<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        #[pin]
        state: State<S, ReqB>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqB>
    where
        S: Service<Request<ReqB>>,
    {
        Checking {
            check: CheckFuture,
            request: Option<Request<ReqB>>,
            inner: Option<S>,
            settings: Arc<Settings>,
        },
        Inner { #[pin] future: S::Future },
        Rejected { response: Option<Response<RejectBody>> },
    }
}

impl<S, ReqB> ResponseFuture<S, ReqB>
where
    S: Service<Request<ReqB>>,
{
    pub(crate) fn inner(future: S::Future) -> Self {
        ResponseFuture {
            state: State::Inner { future },
        }
    }

    pub(crate) fn rejected(response: Response<RejectBody>) -> Self {
        ResponseFuture {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    pub(crate) fn checking(
        check: CheckFuture,
        request: Request<ReqB>,
        inner: S,
        settings: Arc<Settings>,
    ) -> Self {
        ResponseFuture {
            state: State::Checking {
                check,
                request: Some(request),
                inner: Some(inner),
                settings,
            },
        }
    }
}

impl<S, ReqB, ResB> Future for ResponseFuture<S, ReqB>
where
    S: Service<Request<ReqB>, Response = Response<ResB>>,
{
    type Output = Result<Response<AuthBody<ResB>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut state = self.project().state;
        loop {
            match state.as_mut().project() {
                StateProj::Checking {
                    check,
                    request,
                    inner,
                    settings,
                } => {
                    let verdict = match ready!(check.as_mut().poll(cx)) {
                        Ok(status) => status_result(status),
                        Err(e) if settings.fail_open => {
                            tracing::warn!(error = %e, "revocation store failed; failing open");
                            Ok(())
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "revocation store failed; answering 503");
                            Err(AuthError::StoreUnavailable)
                        }
                    };
                    let request = request.take().expect("polled after completion");
                    match verdict {
                        Ok(()) => {
                            let mut inner = inner.take().expect("polled after completion");
                            let future = inner.call(request);
                            state.set(State::Inner { future });
                        }
                        Err(e) => {
                            tracing::debug!(error = %e, "request rejected");
                            let response = settings.rejection.get().reject(e, request.headers());
                            state.set(State::Rejected {
                                response: Some(response),
                            });
                        }
                    }
                }
                StateProj::Inner { future } => {
                    return future.poll(cx).map(|r| r.map(|res| res.map(AuthBody::inner)));
                }
                StateProj::Rejected { response } => {
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(response.map(AuthBody::rejection)));
                }
            }
        }
    }
}
