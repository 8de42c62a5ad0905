//! Views: the typed answers of the API, which are also the `data` of live events. Plain data,
//! no I/O; domain modules build them from their rows. Statuses, directions and states are
//! enums here, serialised as the contract's strings.

pub mod agency;
pub mod apikey;
pub mod audit;
pub mod auth;
pub mod content;
pub mod conversation;
pub mod distribution;
pub mod lead;
pub mod media;
pub mod mention;
pub mod message;
pub mod number;
pub mod preferences;
pub mod report;
pub mod team;
pub mod template;
pub mod timeline;
pub mod workspace;

use serde::Serialize;
use uuid::Uuid;

/// `{"id": ...}`: what a `*.deleted` event says.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Deleted {
    pub id: Uuid,
}

/// Defines a string enum: serde names, `as_str`, and `parse` agree by construction.
#[macro_export]
macro_rules! string_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant),+ }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text),+ } }
            pub fn parse(s: &str) -> Option<$name> { match s { $($text => Some($name::$variant),)+ _ => None } }
        }
        // The OpenAPI schema: a string, one of the serde names (written out here because the
        // derive does not see a `rename` that comes from a macro argument).
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::RefOr::T(utoipa::openapi::schema::Schema::Object(
                    utoipa::openapi::schema::ObjectBuilder::new()
                        .schema_type(utoipa::openapi::schema::Type::String)
                        .enum_values(Some([$($text),+]))
                        .build(),
                ))
            }
        }
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
        impl sqlx::Type<sqlx::Sqlite> for $name {
            fn type_info() -> sqlx::sqlite::SqliteTypeInfo { <&str as sqlx::Type<sqlx::Sqlite>>::type_info() }
            fn compatible(ty: &sqlx::sqlite::SqliteTypeInfo) -> bool { <&str as sqlx::Type<sqlx::Sqlite>>::compatible(ty) }
        }
        impl sqlx::Type<sqlx::Postgres> for $name {
            fn type_info() -> sqlx::postgres::PgTypeInfo { <&str as sqlx::Type<sqlx::Postgres>>::type_info() }
            fn compatible(ty: &sqlx::postgres::PgTypeInfo) -> bool { <&str as sqlx::Type<sqlx::Postgres>>::compatible(ty) }
        }
        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name where &'q str: sqlx::Encode<'q, DB> {
            fn encode_by_ref(&self, buf: &mut <DB as sqlx::Database>::ArgumentBuffer<'q>)
                -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                let text: &'q str = self.as_str();
                <&'q str as sqlx::Encode<'q, DB>>::encode_by_ref(&text, buf)
            }
        }
        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name where &'r str: sqlx::Decode<'r, DB> {
            fn decode(value: <DB as sqlx::Database>::ValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
                let s = <&'r str as sqlx::Decode<'r, DB>>::decode(value)?;
                $name::parse(s).ok_or_else(|| format!("unknown {} {s:?}", stringify!($name)).into())
            }
        }
    };
}
