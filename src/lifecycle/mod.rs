//! The lifecycles, one module each: an email's kind, an invitation's state,
//! a user's stage and status, a delivery's state, a batch recipient's
//! outcome, a one-time token's kind. Each is a Rust enum stored by name in
//! one text column (checked by the migrations), converted in one place, and
//! each module owns its transitions and its rules, in Rust and as the SQL
//! fragments the queries are built from. No other module writes a state's
//! name.

pub mod delivery;
pub mod email_kind;
pub mod invitation;
pub mod outcome;
pub mod token;
pub mod user;

/// Defines an enum stored as text by name: every value (`ALL`), its name,
/// parsing a name, its SQL literal, and diesel's conversions to and from a
/// text column.
macro_rules! stored {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, diesel::AsExpression, diesel::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The name stored in the database.
            pub const fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(name: &str) -> Option<$name> {
                match name {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The name as an SQL string literal.
            pub const fn sql(self) -> &'static str {
                match self {
                    $($name::$variant => concat!("'", $text, "'"),)+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut diesel::serialize::Output<'b, '_, diesel::pg::Pg>) -> diesel::serialize::Result {
                <str as diesel::serialize::ToSql<diesel::sql_types::Text, diesel::pg::Pg>>::to_sql(self.name(), out)
            }
        }

        impl diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg> for $name {
            fn from_sql(bytes: diesel::pg::PgValue<'_>) -> diesel::deserialize::Result<Self> {
                let text = <String as diesel::deserialize::FromSql<diesel::sql_types::Text, diesel::pg::Pg>>::from_sql(bytes)?;
                $name::parse(&text).ok_or_else(|| format!("'{text}' is not a {}", stringify!($name)).into())
            }
        }
    };
}
pub(crate) use stored;

/// `('a', 'b')`: the SQL list of `values`' names, for `IN`.
pub fn sql_list<T: Copy>(values: &[T], sql: fn(T) -> &'static str) -> String {
    let names: Vec<&str> = values.iter().map(|v| sql(*v)).collect();
    format!("({})", names.join(", "))
}
