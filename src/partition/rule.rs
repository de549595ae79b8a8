//! A partition rule compiled for one batch schema: evaluates the level expressions over a batch,
//! groups rows by their values with a [`RowConverter`] (no per-record interpretation), and renders
//! each group's directory (`name=value/...`, Hive-escaped, null or empty values as
//! `__HIVE_DEFAULT_PARTITION__`).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Scalar, StringArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::row::{RowConverter, SortField};
use datafusion::physical_expr::PhysicalExpr;

use super::escape::{escape_into, escape_value};
use super::preset::ident;
use super::{Group, RuleSpec};
use crate::expr::{ExprError, SqlCompiler};

/// One compiled directory level.
#[derive(Debug, Clone)]
struct CompiledLevel {
    /// Partition column name; `None` for a plain directory level of a `path.format`.
    name: Option<String>,
    expr: Arc<dyn PhysicalExpr>,
}

/// A partition rule ready to split batches of one schema.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    key: String,
    levels: Vec<CompiledLevel>,
}

impl CompiledRule {
    /// Compiles `spec` for batches of `schema`; `extra` expressions (the timestamp) are compiled
    /// in the same pass and returned.
    pub fn compile(
        compiler: &SqlCompiler,
        spec: &RuleSpec,
        schema: &SchemaRef,
    ) -> Result<Self, ExprError> {
        match spec {
            RuleSpec::Sql { key, list } => {
                let exprs = compiler.compile_list(key, list, schema)?;
                let mut levels = Vec::with_capacity(exprs.len());
                for e in exprs {
                    if !e.named_by_user {
                        return Err(ExprError::Compile {
                            key: key.clone(),
                            message: format!(
                                "the expression `{}` needs a name for its directory: write `<expression> AS name`",
                                e.name
                            ),
                        });
                    }
                    levels.push(CompiledLevel {
                        name: Some(e.name),
                        expr: e.expr,
                    });
                }
                Ok(CompiledRule {
                    key: key.clone(),
                    levels,
                })
            }
            RuleSpec::Levels { key, levels, .. } => {
                let list = levels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| format!("{} AS {}", l.sql, ident(&format!("level_{i}"))))
                    .collect::<Vec<_>>()
                    .join(", ");
                let exprs = compiler.compile_list(key, &list, schema)?;
                Ok(CompiledRule {
                    key: key.clone(),
                    levels: levels
                        .iter()
                        .zip(exprs)
                        .map(|(l, e)| CompiledLevel {
                            name: l.name.clone(),
                            expr: e.expr,
                        })
                        .collect(),
                })
            }
        }
    }

    /// The partition column names, in directory order (`None` for unnamed levels).
    pub fn names(&self) -> Vec<Option<&str>> {
        self.levels.iter().map(|l| l.name.as_deref()).collect()
    }

    /// The level expressions, in directory order.
    pub fn exprs(&self) -> Vec<Arc<dyn PhysicalExpr>> {
        self.levels.iter().map(|l| l.expr.clone()).collect()
    }

    /// Groups the rows of a batch by directory, given the evaluated level arrays (one per level,
    /// as from [`CompiledRule::exprs`]). Groups come in order of their first row; rows keep
    /// their order within a group.
    pub fn group(&self, arrays: &[ArrayRef]) -> Result<Vec<Group>, ExprError> {
        let err = |e: arrow::error::ArrowError| ExprError::Evaluate {
            key: self.key.clone(),
            message: e.to_string(),
        };
        let as_strings = |arrays: &[ArrayRef]| -> Result<Vec<ArrayRef>, ExprError> {
            arrays
                .iter()
                .map(|a| arrow::compute::cast(a, &DataType::Utf8))
                .collect::<Result<_, _>>()
                .map_err(err)
        };
        if let Some(first_row) = same_on_every_row(arrays) {
            let strings = as_strings(&first_row)?;
            let columns: Vec<&StringArray> =
                strings.iter().filter_map(|a| a.as_string_opt()).collect();
            return Ok(vec![Group {
                dir: self.dir_of(&columns, 0),
                rows: None,
            }]);
        }
        let n = arrays.first().map(|a| a.len()).unwrap_or(0);
        let strings = as_strings(arrays)?;
        let converter =
            RowConverter::new(vec![SortField::new(DataType::Utf8); strings.len()]).map_err(err)?;
        let rows = converter.convert_columns(&strings).map_err(err)?;
        let mut index: HashMap<arrow::row::Row<'_>, usize> = HashMap::new();
        let mut groups: Vec<(usize, Vec<u32>)> = Vec::new();
        for i in 0..n {
            let g = *index.entry(rows.row(i)).or_insert_with(|| {
                groups.push((i, Vec::new()));
                groups.len() - 1
            });
            groups[g].1.push(i as u32);
        }
        let columns: Vec<&StringArray> = strings
            .iter()
            .filter_map(|a| a.as_any().downcast_ref::<StringArray>())
            .collect();
        let single = groups.len() == 1;
        Ok(groups
            .into_iter()
            .map(|(first, rows)| Group {
                dir: self.dir_of(&columns, first),
                rows: if single { None } else { Some(rows) },
            })
            .collect())
    }

    fn dir_of(&self, columns: &[&StringArray], row: usize) -> String {
        let mut dir = String::new();
        for (level, col) in self.levels.iter().zip(columns) {
            if !dir.is_empty() {
                dir.push('/');
            }
            let value = col.is_valid(row).then(|| col.value(row));
            if let Some(name) = &level.name {
                escape_into(name, &mut dir);
                dir.push('=');
            }
            escape_value(value, &mut dir);
        }
        dir
    }
}

/// The first row of each level array when every level has one value on every row (the common
/// case: a batch of one Kafka partition, one day or one hour), found without grouping row by
/// row; `None` otherwise or when unsure. Floating point levels always take the row by row
/// grouping: equal numbers (0.0 and -0.0) can name different directories.
fn same_on_every_row(arrays: &[ArrayRef]) -> Option<Vec<ArrayRef>> {
    let first_row: Vec<ArrayRef> = arrays.iter().map(|a| a.slice(0, 1)).collect();
    for (array, first) in arrays.iter().zip(&first_row) {
        let scalar_type = !array.data_type().is_floating() && !array.data_type().is_nested();
        if array.is_empty() || !scalar_type {
            return None;
        }
        let differs = arrow::compute::kernels::cmp::distinct(array, &Scalar::new(first)).ok()?;
        if differs.true_count() > 0 {
            return None;
        }
    }
    Some(first_row)
}

#[cfg(test)]
#[path = "rule_tests.rs"]
mod tests;
