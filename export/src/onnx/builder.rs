//! A small helper to assemble an ONNX graph with the prost message types of
//! `tract_onnx::pb`: nodes, initializers and attributes.

use tract_onnx::pb::{
    attribute_proto::AttributeType, tensor_proto::DataType, AttributeProto, NodeProto, TensorProto,
};

/// Nodes and initializers being assembled, in topological order.
#[derive(Debug, Default)]
pub struct GraphBuilder {
    /// The nodes in order.
    pub nodes: Vec<NodeProto>,
    /// The initializers.
    pub initializers: Vec<TensorProto>,
}

/// An integer attribute.
pub fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

/// An integer-list attribute.
pub fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn raw_tensor(name: &str, dims: &[usize], dt: DataType, raw: Vec<u8>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: dt as i32,
        raw_data: raw,
        ..Default::default()
    }
}

impl GraphBuilder {
    /// Append a node `op` reading `inputs` and writing `outputs`.
    pub fn node(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            op_type: op.into(),
            name: name.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.iter().map(|s| s.to_string()).collect(),
            attribute: attrs,
            ..Default::default()
        });
    }

    /// Append a one-output node whose output (and node name) is `out`;
    /// returns `out`.
    pub fn op(
        &mut self,
        op: &str,
        out: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
    ) -> String {
        self.node(op, out, inputs, &[out], attrs);
        out.to_string()
    }

    fn has_init(&self, name: &str) -> bool {
        self.initializers.iter().any(|t| t.name == name)
    }

    /// An f32 initializer (returns its name).
    pub fn f32s(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        debug_assert_eq!(dims.iter().product::<usize>(), data.len(), "{name}");
        if !self.has_init(name) {
            let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.initializers
                .push(raw_tensor(name, dims, DataType::Float, raw));
        }
        name.to_string()
    }

    /// An i64 initializer (shapes, axes).
    pub fn i64s(&mut self, name: &str, data: &[i64]) -> String {
        if !self.has_init(name) {
            let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.initializers
                .push(raw_tensor(name, &[data.len()], DataType::Int64, raw));
        }
        name.to_string()
    }

    /// An i8 initializer.
    pub fn i8s(&mut self, name: &str, dims: &[usize], data: &[i8]) -> String {
        if !self.has_init(name) {
            let raw = data.iter().map(|&v| v as u8).collect();
            self.initializers
                .push(raw_tensor(name, dims, DataType::Int8, raw));
        }
        name.to_string()
    }

    /// A u8 initializer.
    pub fn u8s(&mut self, name: &str, dims: &[usize], data: &[u8]) -> String {
        if !self.has_init(name) {
            self.initializers
                .push(raw_tensor(name, dims, DataType::Uint8, data.to_vec()));
        }
        name.to_string()
    }

    /// An i32 initializer.
    pub fn i32s(&mut self, name: &str, dims: &[usize], data: &[i32]) -> String {
        if !self.has_init(name) {
            let raw = data.iter().flat_map(|v| v.to_le_bytes()).collect();
            self.initializers
                .push(raw_tensor(name, dims, DataType::Int32, raw));
        }
        name.to_string()
    }

    /// A scalar f32 constant.
    pub fn scalar(&mut self, name: &str, v: f32) -> String {
        self.f32s(name, &[], &[v])
    }

    /// `Reshape(x, shape)` into `out`.
    pub fn reshape(&mut self, x: &str, shape: &[i64], out: &str) -> String {
        let s = self.i64s(&format!("{out}/shape"), shape);
        self.op("Reshape", out, &[x, &s], vec![])
    }

    /// `Slice(x)[start:end]` along `axis` into `out`.
    pub fn slice(&mut self, x: &str, axis: i64, start: i64, end: i64, out: &str) -> String {
        let st = self.i64s(&format!("{out}/starts"), &[start]);
        let en = self.i64s(&format!("{out}/ends"), &[end]);
        let ax = self.i64s(&format!("{out}/axes"), &[axis]);
        self.op("Slice", out, &[x, &st, &en, &ax], vec![])
    }
}

/// Values of an f32 initializer (raw or `float_data`).
pub fn tensor_f32(t: &TensorProto) -> Option<Vec<f32>> {
    if t.data_type != DataType::Float as i32 {
        return None;
    }
    if !t.raw_data.is_empty() {
        Some(
            t.raw_data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        )
    } else {
        Some(t.float_data.clone())
    }
}
