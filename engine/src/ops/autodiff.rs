//! The fast ops on `Autodiff<B>`: the forward runs `B`'s fast op and records a node whose
//! backward calls `B`'s fast gradients.

use super::FastBackend;
use super::norm::GroupNormOptions;
use burn::backend::Autodiff;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::ops::{ConvOptions, FloatTensor};

/// A conv with a bias has three parents, one without has two: one node type each.
#[derive(Debug)]
struct Conv2dWithBias;
#[derive(Debug)]
struct Conv2dNoBias;

/// The input's and the weight's gradients, which both node types compute alike.
fn conv2d_grads<B: FastBackend>(
    [x_id, weight_id]: [Option<NodeId>; 2],
    (x, weight): (FloatTensor<B>, FloatTensor<B>),
    grad: FloatTensor<B>,
    options: ConvOptions<2>,
    grads: &mut Gradients,
) {
    if let Some(id) = x_id {
        grads.register::<B>(id, B::fast_conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone()));
    }
    if let Some(id) = weight_id {
        grads.register::<B>(id, B::fast_conv2d_weight_backward(x, weight, grad, options));
    }
}

impl<B: FastBackend> Backward<B, 3> for Conv2dWithBias {
    type State = (NodeId, NodeId, NodeId, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, bias_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        if let Some(node) = node_bias {
            let bias = checkpointer.retrieve_node_output::<FloatTensor<B>>(bias_state);
            grads.register::<B>(node.id, B::fast_conv2d_bias_backward(x.clone(), bias, grad.clone()));
        }
        conv2d_grads::<B>([node_x.map(|n| n.id), node_weight.map(|n| n.id)], (x, weight), grad, options, grads);
    }
}

impl<B: FastBackend> Backward<B, 2> for Conv2dNoBias {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let weight = checkpointer.retrieve_node_output::<FloatTensor<B>>(weight_state);
        conv2d_grads::<B>(ops.parents.map(|p| p.map(|n| n.id)), (x, weight), grad, options, grads);
    }
}

pub(super) fn conv2d<B: FastBackend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: Option<FloatTensor<Autodiff<B, C>>>,
    options: ConvOptions<2>,
) -> FloatTensor<Autodiff<B, C>> {
    match bias {
        Some(bias) => match Conv2dWithBias.prepare::<C>([x.node.clone(), weight.node.clone(), bias.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), prep.checkpoint(&bias), options.clone());
                prep.finish(state, B::fast_conv2d(x.primitive, weight.primitive, Some(bias.primitive), options))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_conv2d(x.primitive, weight.primitive, Some(bias.primitive), options)),
        },
        None => match Conv2dNoBias.prepare::<C>([x.node.clone(), weight.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let state = (prep.checkpoint(&x), prep.checkpoint(&weight), options.clone());
                prep.finish(state, B::fast_conv2d(x.primitive, weight.primitive, None, options))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::fast_conv2d(x.primitive, weight.primitive, None, options)),
        },
    }
}

#[derive(Debug)]
struct GroupNormBackward;

impl<B: FastBackend> Backward<B, 3> for GroupNormBackward {
    type State = (NodeId, NodeId, NodeId, GroupNormOptions);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, gamma_state, beta_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FloatTensor<B>>(x_state);
        let gamma = checkpointer.retrieve_node_output::<FloatTensor<B>>(gamma_state);
        let beta = checkpointer.retrieve_node_output::<FloatTensor<B>>(beta_state);
        let computed = B::fast_group_norm_backward(x, gamma, beta, grad, options);
        for (parent, g) in ops.parents.into_iter().zip(computed) {
            if let Some(node) = parent {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

pub(super) fn group_norm<B: FastBackend, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
    gamma: FloatTensor<Autodiff<B, C>>,
    beta: FloatTensor<Autodiff<B, C>>,
    options: GroupNormOptions,
) -> FloatTensor<Autodiff<B, C>> {
    match GroupNormBackward.prepare::<C>([x.node.clone(), gamma.node.clone(), beta.node.clone()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let state = (prep.checkpoint(&x), prep.checkpoint(&gamma), prep.checkpoint(&beta), options);
            prep.finish(state, B::fast_group_norm(x.primitive, gamma.primitive, beta.primitive, options))
        }
        OpsKind::UnTracked(prep) => prep.finish(B::fast_group_norm(x.primitive, gamma.primitive, beta.primitive, options)),
    }
}
