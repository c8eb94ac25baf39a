//! The response body: the inner service's, or a rejection's.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::reject::RejectBody;

pin_project! {
    /// Response body of [`JwtAuth`](crate::JwtAuth): the inner body, or a rejection's, so no
    /// one has to map bodies by hand.
    #[project = AuthBodyProj]
    // pin-project-lite takes no docs on variant fields; each holds the variant's body.
    #[allow(missing_docs)]
    pub enum AuthBody<B> {
        /// The inner service's body.
        Inner {
            #[pin]
            body: B,
        },
        /// A rejection's body.
        Rejection {
            #[pin]
            body: RejectBody,
        },
    }
}

impl<B> AuthBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        AuthBody::Inner { body }
    }

    pub(crate) fn rejection(body: RejectBody) -> Self {
        AuthBody::Rejection { body }
    }
}

impl<B> Body for AuthBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project() {
            AuthBodyProj::Inner { body } => body.poll_frame(cx),
            AuthBodyProj::Rejection { body } => body.poll_frame(cx).map_err(|never| match never {}),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            AuthBody::Inner { body } => body.is_end_stream(),
            AuthBody::Rejection { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            AuthBody::Inner { body } => body.size_hint(),
            AuthBody::Rejection { body } => body.size_hint(),
        }
    }
}
