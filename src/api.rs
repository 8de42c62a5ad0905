//! The `/api/v1` route builder: every route is added through it, so the route list is
//! inspectable (the permission matrix test compares it with its table).

use axum::Router;
use axum::handler::Handler;
use axum::routing::MethodRouter;

use crate::state::AppState;

/// Where the API lives.
pub const API_PREFIX: &str = "/api/v1";

/// The `/api/v1` routes. Routes are only added through this builder, which records each
/// (method, path) pair, so the route list is inspectable: the permission matrix test compares
/// it with its table, and a route added without a matrix row fails that test.
#[derive(Default)]
pub struct Api {
    router: Router<AppState>,
    list: Vec<(&'static str, &'static str)>,
}

macro_rules! api_method {
    ($($name:ident => $method:literal),+ $(,)?) => {$(
        pub fn $name<H, T>(self, path: &'static str, handler: H) -> Self
        where
            H: Handler<T, AppState>,
            T: 'static,
        {
            self.add($method, path, axum::routing::$name(handler))
        }
    )+};
}

impl Api {
    pub fn new() -> Self {
        Self::default()
    }

    api_method!(get => "GET", post => "POST", put => "PUT", patch => "PATCH", delete => "DELETE");

    /// A POST route whose body may be up to `max_bytes` (every other route keeps axum's 2 MB).
    pub fn post_large<H, T>(self, path: &'static str, handler: H, max_bytes: usize) -> Self
    where
        H: Handler<T, AppState>,
        T: 'static,
    {
        self.add("POST", path, axum::routing::post(handler).layer(axum::extract::DefaultBodyLimit::max(max_bytes)))
    }

    fn add(mut self, method: &'static str, path: &'static str, route: MethodRouter<AppState>) -> Self {
        assert!(!self.list.contains(&(method, path)), "route {method} {path} added twice");
        self.router = self.router.route(path, route);
        self.list.push((method, path));
        self
    }

    pub fn merge(mut self, other: Api) -> Self {
        for r in &other.list {
            assert!(!self.list.contains(r), "route {} {} added twice", r.0, r.1);
        }
        self.router = self.router.merge(other.router);
        self.list.extend(other.list);
        self
    }

    /// The routes, for the router.
    pub fn into_router(self) -> Router<AppState> {
        self.router
    }

    /// (method, path below `/api/v1`) of every route.
    pub fn list(&self) -> &[(&'static str, &'static str)] {
        &self.list
    }
}
