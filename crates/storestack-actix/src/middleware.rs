//! [`Degradation`]: the actix-web middleware that opens the degradation
//! scope around `SessionMiddleware` and marks degraded responses.

use std::future::{ready, Future, Ready};
use std::pin::Pin;
use std::rc::Rc;

use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{HeaderName, HeaderValue};
use storestack_session_core::degrade::{scoped, HEADER};

/// Lets a [`Degraded`](crate::Degraded) session store serve temporary
/// sessions in the requests it wraps, and adds `X-Session-Degraded: true`
/// to their responses when it did.
///
/// It must be **outside** `SessionMiddleware` (in actix-web, the later
/// `.wrap`): the session is loaded and saved within its scope. Without it
/// a `Degraded` store degrades nothing.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct Degradation;

impl Degradation {
    /// The middleware.
    pub fn new() -> Self {
        Degradation
    }
}

impl<S, B> Transform<S, ServiceRequest> for Degradation
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = DegradationMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(DegradationMiddleware {
            service: Rc::new(service),
        }))
    }
}

/// The service [`Degradation`] builds.
#[derive(Debug)]
pub struct DegradationMiddleware<S> {
    service: Rc<S>,
}

type Response<B> = Result<ServiceResponse<B>, actix_web::Error>;

impl<S, B> Service<ServiceRequest> for DegradationMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Response<B>>>>;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        Box::pin(async move {
            let (response, degraded) = scoped(async move { service.call(req).await }).await;
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
