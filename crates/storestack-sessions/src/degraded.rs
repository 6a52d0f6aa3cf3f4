//! [`DegradedLayer`]: the tower layer that opens the degradation scope
//! around `SessionManagerLayer` and marks degraded responses.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::header::{HeaderName, HeaderValue};
use http::{Request, Response};
use storestack_session_core::degrade::{scoped, HEADER};
use tower_layer::Layer;
use tower_service::Service;

/// Lets a [`Degraded`](crate::Degraded) session store serve temporary
/// sessions in the requests it wraps, and adds `X-Session-Degraded: true`
/// to their responses when it did.
///
/// It must be **outside** `SessionManagerLayer` (in axum, the later
/// `.layer`): the session is loaded and saved within its scope. Without it
/// a `Degraded` store degrades nothing.
///
/// ```
/// use storestack::{MemoryStore, StoreExt};
/// use storestack_sessions::{DegradeLayer, DegradedLayer, SessionStore};
/// use tower_sessions::SessionManagerLayer;
///
/// let store = SessionStore::new(MemoryStore::new().layer(DegradeLayer::default()));
/// let app = axum::Router::<()>::new()
///     .route("/", axum::routing::get(|| async { "hello" }))
///     .layer(SessionManagerLayer::new(store))
///     .layer(DegradedLayer::new()); // outside the session layer
/// # drop(app);
/// ```
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DegradedLayer;

impl DegradedLayer {
    /// The layer.
    pub fn new() -> Self {
        DegradedLayer
    }
}

impl<S> Layer<S> for DegradedLayer {
    type Service = DegradedService<S>;

    fn layer(&self, inner: S) -> DegradedService<S> {
        DegradedService { inner }
    }
}

/// The service [`DegradedLayer`] builds.
#[derive(Debug, Clone)]
pub struct DegradedService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for DegradedService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        // The service that was made ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let (response, degraded) = scoped(async move { inner.call(req).await }).await;
            let mut response = response?;
            if degraded.is_some() {
                response.headers_mut().insert(
                    HeaderName::from_static(HEADER),
                    HeaderValue::from_static("true"),
                );
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::routing::get;
    use axum::Router;
    use http::header::{COOKIE, SET_COOKIE};
    use http::StatusCode;
    use storestack::{FaultConfig, MemoryStore, StoreExt};
    use tower::ServiceExt;
    use tower_sessions::{Session, SessionManagerLayer};

    use super::*;
    use crate::{DegradeLayer, SessionStore};

    async fn count(session: Session) -> Result<String, StatusCode> {
        let views = session.get::<u64>("views").await;
        let views = views
            .map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?
            .unwrap_or(0)
            + 1;
        let saved = session.insert("views", views).await;
        saved.map_err(|_| StatusCode::SERVICE_UNAVAILABLE)?;
        Ok(format!("views: {views}"))
    }

    /// `GET /` with `cookie`: status, degraded header, body, set cookie.
    async fn visit(
        app: &Router,
        cookie: Option<&str>,
    ) -> (StatusCode, bool, String, Option<String>) {
        let mut req = Request::get("/");
        if let Some(c) = cookie {
            req = req.header(COOKIE, c);
        }
        let res = app
            .clone()
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let degraded = res.headers().get(HEADER).is_some_and(|v| v == "true");
        let set = res.headers().get(SET_COOKIE).map(|v| {
            let v = v.to_str().unwrap();
            v.split(';').next().unwrap().to_owned()
        });
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        (status, degraded, body, set)
    }

    fn app(degrade: bool) -> (Router, storestack::FaultHandle) {
        let backend = MemoryStore::new().fault_injection(FaultConfig::default());
        let faults = backend.handle();
        let sessions = SessionManagerLayer::new(SessionStore::new(
            backend.layer(DegradeLayer::default()).shared(),
        ))
        .with_secure(false);
        let router = Router::new().route("/", get(count)).layer(sessions);
        let router = if degrade {
            router.layer(DegradedLayer::new())
        } else {
            router
        };
        (router, faults)
    }

    #[tokio::test]
    async fn an_outage_is_served_degraded_and_the_session_survives_it() {
        let (app, faults) = app(true);
        let (status, degraded, body, cookie) = visit(&app, None).await;
        assert_eq!(
            (status, degraded, body.as_str()),
            (StatusCode::OK, false, "views: 1")
        );
        let cookie = cookie.expect("a session cookie");
        assert_eq!(visit(&app, Some(&cookie)).await.2, "views: 2");

        faults.set_down(true);
        for expected in 1..=2 {
            let (status, degraded, body, set) = visit(&app, Some(&cookie)).await;
            assert_eq!(status, StatusCode::OK);
            assert!(degraded, "marked degraded");
            assert_eq!(body, format!("views: {expected}"), "a temporary session");
            assert!(
                set.is_none() || set.as_deref() == Some(cookie.as_str()),
                "same id"
            );
        }
        let (status, degraded, body, _) = visit(&app, None).await;
        assert_eq!(
            (status, degraded, body.as_str()),
            (StatusCode::OK, true, "views: 1")
        );

        faults.set_down(false);
        let (status, degraded, body, _) = visit(&app, Some(&cookie)).await;
        assert_eq!((status, degraded), (StatusCode::OK, false));
        assert_eq!(body, "views: 3", "the real session, untouched");
    }

    #[tokio::test]
    async fn without_the_layer_an_outage_is_an_error() {
        let (app, faults) = app(false);
        faults.set_down(true);
        let (status, degraded, _, _) = visit(&app, None).await;
        assert!(status.is_server_error(), "{status}");
        assert!(!degraded);
    }
}
